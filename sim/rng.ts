// Deterministic randomness. Records are a pure function of (seed, kind, index), so any record can be
// rebuilt on demand and the ground truth never has to be stored.

export function seedHash(seed: string | number): number {
  const text = String(seed);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of the seed and any number of small integers. */
export function hash(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const p of parts) {
    h = mix(h ^ Math.imul((p >>> 0) + 0x9e3779b9, 0x27d4eb2f));
    // Indexes above 2^32 still differ.
    if (p > 0xffffffff) h = mix(h ^ Math.floor(p / 0x100000000));
  }
  return mix(h);
}

/** A uniform number in [0, 1) from the seed and parts. */
export function u01(seed: number, ...parts: number[]): number {
  return hash(seed, ...parts) / 0x100000000;
}

export function pick<T>(items: readonly T[], seed: number, ...parts: number[]): T {
  return items[hash(seed, ...parts) % items.length]!;
}

/** mulberry32: a small sequential generator for per-request fault decisions. */
export function sequence(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/** A UUID-shaped id whose last 12 hex digits are the index, so the index can be read back. */
export function indexedUuid(seed: number, kind: number, index: number): string {
  const a = hash(seed, kind, index, 1).toString(16).padStart(8, '0');
  const b = hash(seed, kind, index, 2).toString(16).padStart(8, '0');
  return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${(8 + (hash(seed, kind, index, 3) % 4)).toString(16)}${kind
    .toString(16)
    .padStart(3, '0')}-${index.toString(16).padStart(12, '0')}`;
}

/** The index inside an indexedUuid of the given kind, or undefined if the id is not one of ours. */
export function uuidIndex(seed: number, kind: number, id: string): number | undefined {
  const m = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab]([0-9a-f]{3})-([0-9a-f]{12})$/.exec(id);
  if (!m || parseInt(m[1]!, 16) !== kind) return undefined;
  const index = parseInt(m[2]!, 16);
  return indexedUuid(seed, kind, index) === id ? index : undefined;
}

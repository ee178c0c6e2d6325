/**
 * The partition of a keyed message, as Kafka's default partitioner chooses it (and kafkajs's, and the
 * Java client's): murmur2 of the key's bytes, made non-negative, modulo the partition count. kafkajs
 * computes murmur2 with its 64-bit Long (a BigInt) at every step, which was the largest part of the
 * producers' Kafka overhead in the producers bench (#14); only the low 32 bits matter, so this is the
 * same hash in 32-bit arithmetic (Math.imul), as the Java client computes it.
 * test/unit/producers/key-partition.test.ts checks it against kafkajs's own on random keys.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

export function murmur2(key: Uint8Array): number {
  const length = key.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The last one to three bytes (Java's switch falls through from 3 to 1).
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= key[whole + 2]! << 16;
    if (rest >= 2) h ^= key[whole + 1]! << 8;
    h ^= key[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner gives a message with this key among `count` partitions. */
export function keyPartition(key: Buffer | string, count: number): number {
  return (murmur2(typeof key === 'string' ? Buffer.from(key) : key) & 0x7fffffff) % count;
}

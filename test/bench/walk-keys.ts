// `npm run bench -- walk-keys`: what a walk's seen keys cost (producers/follow/walk-keys.ts), against
// the plain Set the walks used before, with no API, Kafka or state in the way. Each variant runs in a
// process of its own (this file, forked with its variant) and walks N keys of 40 characters, as a
// listing of N entities: per page of 100, a lookup and an add per key, then the page's settle; then the
// tombstone check, a lookup of every key and of N/100 absent ones. It reports peak RSS, the heap in use
// after a full GC at the end of the walk, and CPU per key of each pass. A benchmark: it asserts only
// that every variant answers every lookup right.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSinkNodeFlag } from '../../core/node-flags.ts';
import { WalkKeys } from '../../producers/follow/walk-keys.ts';
import { rssParts } from './rss.ts';

export interface WalkKeysVariant {
  /** `set`: a plain Set; a number: WalkKeys with that many keys in memory. */
  variant: 'set' | number;
  keys: number;
  /** Set when the variant's process did not finish (a heap over --max-old-space-size ends it). */
  failed?: string;
  peakRssMb: number;
  /** Peaks of anonymous memory and of file pages mapped in (LevelDB's tables, the node binary). */
  peakRssAnonMb: number;
  peakRssFileMb: number;
  /** V8's heap in use after a full GC, with every key of the walk still held. */
  heapUsedMb: number;
  walkMicrosPerKey: number;
  checkMicrosPerKey: number;
}

export interface WalkKeysBenchResult {
  bench: 'walk-keys';
  keys: number;
  nodeOptions: string[];
  variants: WalkKeysVariant[];
}

const PAGE = 100;
const key = (i: number) =>
  `batch_files/${String(i).padStart(9, '0')}/input/f${String((i * 2654435761) % 1e9).padStart(9, '0')}.pdf`;
const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;

async function runVariant(variant: 'set' | number, n: number): Promise<WalkKeysVariant> {
  const dir = mkdtempSync(join(tmpdir(), 'walk-keys-bench-'));
  const set = variant === 'set' ? new Set<string>() : new WalkKeys(variant, dir);
  let peak = process.memoryUsage.rss();
  let anon = 0;
  let file = 0;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss());
    const parts = rssParts();
    anon = Math.max(anon, parts?.anon ?? 0);
    file = Math.max(file, parts?.file ?? 0);
  };
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const walkStart = cpu();
  for (let page = 0; page * PAGE < n; page++) {
    for (let i = page * PAGE; i < Math.min(n, (page + 1) * PAGE); i++) {
      const k = key(i);
      if (!set.has(k)) set.add(k);
    }
    if (set instanceof WalkKeys) await set.settle();
    if (page % 100 === 0) sample();
  }
  const walkMicros = cpu() - walkStart;
  (globalThis as { gc?: () => void }).gc?.();
  const heapUsed = process.memoryUsage().heapUsed;
  sample();
  const checkStart = cpu();
  for (let i = 0; i < n + n / 100; i++) {
    if (set.has(key(i)) !== i < n) throw new Error(`${String(variant)}: has(${key(i)}) is wrong`);
    if (i % 10_000 === 0) sample();
  }
  const checkMicros = cpu() - checkStart;
  peak = Math.max(peak, process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024);
  if (set instanceof WalkKeys) await set.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    variant,
    keys: n,
    peakRssMb: mb(peak),
    peakRssAnonMb: mb(anon),
    peakRssFileMb: mb(file),
    heapUsedMb: mb(heapUsed),
    walkMicrosPerKey: Math.round((walkMicros / n) * 100) / 100,
    checkMicrosPerKey: Math.round((checkMicros / (n + n / 100)) * 100) / 100,
  };
}

/** Runs each variant in a child process of its own, with `nodeOptions`, one after the other. */
export async function runWalkKeysBench(
  n: number,
  limits: number[],
  nodeOptions: string[],
): Promise<WalkKeysBenchResult> {
  const variants: WalkKeysVariant[] = [];
  for (const variant of ['set' as const, ...limits]) {
    variants.push(
      await new Promise<WalkKeysVariant>((resolve, reject) => {
        const child = fork(fileURLToPath(import.meta.url), [String(variant), String(n)], {
          execArgv: [...process.execArgv.filter((a) => !isSinkNodeFlag(a)), '--expose-gc', ...nodeOptions],
          stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
        child.once('message', (m) => resolve(m as WalkKeysVariant));
        child.once('error', reject);
        child.once('exit', (code, signal) => {
          if (code === 0) return;
          const why = /heap out of memory|Reached heap limit/.test(stderr)
            ? 'heap out of memory'
            : stderr.trim();
          resolve({
            variant,
            keys: n,
            failed: `exited ${code ?? signal}: ${why.split('\n').slice(-3).join(' ')}`,
            peakRssMb: 0,
            peakRssAnonMb: 0,
            peakRssFileMb: 0,
            heapUsedMb: 0,
            walkMicrosPerKey: 0,
            checkMicrosPerKey: 0,
          });
        });
      }),
    );
  }
  return { bench: 'walk-keys', keys: n, nodeOptions, variants };
}

export function walkKeysTable(r: WalkKeysBenchResult): string {
  return [
    `walk-keys benchmark: ${r.keys} keys of ${key(0).length} characters, pages of ${PAGE}; ` +
      `node flags: ${r.nodeOptions.join(' ') || 'none'}`,
    ...r.variants.map(
      (v) =>
        `  ${(v.variant === 'set' ? 'Set (before)' : `WalkKeys, ${v.variant} in memory`).padEnd(28)} ` +
        (v.failed
          ? `failed: ${v.failed}`
          : `peak RSS ${String(v.peakRssMb).padStart(6)} MB (anon ${v.peakRssAnonMb}, file ${v.peakRssFileMb})  heap in use ${String(v.heapUsedMb).padStart(6)} MB  ` +
            `walk ${v.walkMicrosPerKey} µs/key  check ${v.checkMicrosPerKey} µs/key`),
    ),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const [variant, n] = process.argv.slice(2);
  runVariant(variant === 'set' ? 'set' : Number(variant), Number(n)).then(
    (r) => process.send!(r, () => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Logger } from '../core/log.ts';
import { parseJson } from './instabase/json.ts';

type Value = Record<string, unknown>;

/** Where local copies of the cursor state are made when `producers.stateDir` is not set. */
export const defaultStateDir = (): string => join(tmpdir(), 'instabase-stream-state');

/** How long another instance's copy must have been untouched before it may be taken for abandoned. */
const STALE_MS = 3_600_000;

/** The greatest code point: `prefix + LAST` is above every key that starts with `prefix`. */
const LAST = '\u{10FFFF}';

/**
 * The settings of every LevelDB the producers open (the state's local copies, ./follow/walk-keys.ts's
 * spilled keys): their memory must stay a few MB whatever they hold.
 */
export const LEVEL_OPTIONS = {
  keyEncoding: 'utf8',
  valueEncoding: 'utf8',
  // LevelDB maps every table file it holds open into memory, and holds up to maxOpenFiles - 10 of
  // them: with its defaults (1,000 files of 2 MiB) the mapped pages grow with the state, which the
  // producers bench saw as ~95 MB of RSS at 820k records. 74 is the least LevelDB accepts; with
  // tables of 512 KiB the mapped part stays a few tens of MB (file pages, which the kernel can drop).
  maxOpenFiles: 74,
  maxFileSize: 512 * 1024,
  // Level-0 tables are as large as the write buffer (default 4 MiB, held twice while one is
  // flushed) and are mapped like the rest; the block cache (default 8 MiB) is anonymous memory.
  // The producers bench at 820k records peaked ~6 MB lower with these, its CPU within the noise.
  writeBufferSize: 1024 * 1024,
  cacheSize: 2 * 1024 * 1024,
} as const;

/**
 * One local copy of a state store's keys (./state-store.ts), in a LevelDB of its own under the state
 * directory: read synchronously by key, and in key order by prefix, with memory bounded by LevelDB's
 * cache rather than by the number of keys. It is a cache of the state topic, never the truth: every
 * copy is new (a directory of its own), and is removed when it is replaced or closed.
 */
export class LocalState {
  private constructor(
    private readonly db: ClassicLevel<string, string>,
    readonly dir: string,
  ) {}

  /**
   * Opens a new, empty copy for `instanceId`. Copies no process holds any more (a producer killed
   * before it could remove its own) are removed first: an open copy is locked by LevelDB, so one that
   * opens is abandoned. Those of other instances (a renamed group or client id never loads again) are
   * removed only once untouched for STALE_MS, so that a copy another unit is creating this moment,
   * before LevelDB has locked it, is left alone.
   */
  static async create(root: string, instanceId: string, logger: Logger): Promise<LocalState> {
    const now = Date.now();
    await mkdir(root, { recursive: true });
    const stem = `${instanceId.replace(/[^A-Za-z0-9._-]/g, '_')}.`;
    for (const name of await readdir(root)) {
      const dir = join(root, name);
      if (!name.startsWith(stem)) {
        const modified = await stat(dir).then(
          (s) => s.mtimeMs,
          () => now,
        );
        if (now - modified < STALE_MS) continue;
      }
      if (await abandoned(dir)) {
        await rm(dir, { recursive: true, force: true });
        logger.info(
          { dir },
          "removed an abandoned local store (a copy of the cursor state, or a walk's keys)",
        );
      }
    }
    const dir = join(root, `${stem}${randomUUID()}`);
    const db = new ClassicLevel<string, string>(dir, LEVEL_OPTIONS);
    await db.open();
    return new LocalState(db, dir);
  }

  get(key: string): Value | undefined {
    const json = this.db.getSync(key);
    return json === undefined ? undefined : (parseJson(json) as Value);
  }

  /**
   * The keys under `prefix` that pass `keep`, with their values, in key order, from a snapshot taken
   * now. Only the values of kept keys are parsed.
   */
  async *entries(prefix: string, keep: (key: string) => boolean): AsyncGenerator<[string, Value]> {
    for await (const [key, json] of this.db.iterator({ gte: prefix, lt: prefix + LAST }))
      if (keep(key)) yield [key, parseJson(json) as Value];
  }

  /** Writes values as they are in the topic, lossless JSON (null: forgets the key), in order. */
  async write(changes: ReadonlyArray<readonly [string, string | null]>): Promise<void> {
    if (changes.length === 0) return;
    await this.db.batch(
      changes.map(([key, value]) =>
        value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
      ),
    );
  }

  /** Closes the copy and removes its directory. */
  async destroy(): Promise<void> {
    await this.db.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Whether a copy's directory is held by no open LevelDB (in this process or any other). */
async function abandoned(dir: string): Promise<boolean> {
  const db = new ClassicLevel(dir, { createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    // LEVEL_LOCKED: a live store holds it. Anything else (a copy half made or damaged) is of no use.
    return (err as { cause?: { code?: string }; code?: string }).cause?.code !== 'LEVEL_LOCKED';
  }
  await db.close();
  return true;
}

import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { defaultStateDir, LEVEL_OPTIONS } from '../local-state.ts';
import type { EngineContext } from './types.ts';

/** What a walk asks of the keys it has seen (a plain Set answers it too: a tombstone check with none). */
export interface KeyLookup {
  has(key: string): boolean;
}

/**
 * The keys one walk has seen, so that it publishes an entity once and, once complete, knows which
 * entities it did not see. A listing can hold millions of entities, and a million keys in a Set take
 * ~170 MB of heap, so the producers' memory would grow with the backlog (#14). Up to `limit` keys are
 * kept in memory; past that they are moved to a scratch LevelDB of the walk's own, read synchronously
 * like the state's local copy. They matter to this walk only: a walk that dies is walked again from the
 * start with a new set, so nothing here is ever recovered, and the directory is removed when the walk
 * ends (one left by a killed process is removed by a later start, ../local-state.ts).
 *
 * One owner: whoever creates a set closes it. `add` and `has` are synchronous; `settle` is where the
 * memory is given back, and a walk calls it after each page.
 */
export class WalkKeys implements KeyLookup {
  private memory = new Set<string>();
  /** Sets being written to disk: still asked by `has` until the write is done. */
  private readonly moving: Set<string>[] = [];
  private db: ClassicLevel<string, string> | undefined;
  /** The writes to disk, one after the other. */
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  /**
   * @param limit keys held in memory before they are moved to disk (`producers.walkKeysInMemory`)
   * @param root the directory scratch stores are made in (`producers.stateDir`)
   */
  constructor(
    private readonly limit: number,
    private readonly root: string,
  ) {}

  /** A walk's set, as the producers' configuration sizes it. */
  static of(ctx: Pick<EngineContext, 'config'>): WalkKeys {
    const knobs = ctx.config.producers;
    return new WalkKeys(knobs.walkKeysInMemory, knobs.stateDir ?? defaultStateDir());
  }

  has(key: string): boolean {
    if (this.memory.has(key)) return true;
    for (const set of this.moving) if (set.has(key)) return true;
    return this.db !== undefined && this.db.getSync(key) !== undefined;
  }

  add(key: string): void {
    if (this.closed) throw new Error('a walk added a key after its set was closed');
    this.memory.add(key);
  }

  /** Whether the keys in memory have reached the limit (settle then moves them to disk). */
  private get full(): boolean {
    return this.memory.size >= this.limit;
  }

  /** Keys held in memory now, moving ones included: what the limit bounds, as the tests check. */
  get inMemory(): number {
    return this.moving.reduce((n, set) => n + set.size, this.memory.size);
  }

  /**
   * Moves the keys in memory to disk once they have reached the limit; resolves once they are there.
   * A write that fails leaves its keys in memory, where `has` still finds them, and rejects: the walk
   * fails and is walked again, rather than going on with its memory unbounded.
   */
  settle(): Promise<void> {
    if (!this.full) return this.writing;
    const set = this.memory;
    this.memory = new Set();
    this.moving.push(set);
    const write = this.writing.then(async () => {
      const db = await this.open();
      // A chained batch hands each key to LevelDB as it goes, rather than building an operation per key.
      // The value is not empty: classic-level 3.0.0 copies an empty string into a buffer it never frees
      // (its DisposeSliceBuffer skips empty slices), ~32 bytes of native memory lost per key.
      const batch = db.batch();
      for (const key of set) batch.put(key, '1');
      await batch.write();
      this.moving.splice(this.moving.indexOf(set), 1);
    });
    // A failed write is its caller's failure; the next one still runs.
    this.writing = write.catch(() => undefined);
    return write;
  }

  /** Forgets every key and removes the scratch store. */
  async close(): Promise<void> {
    this.closed = true;
    this.memory.clear();
    await this.writing;
    const db = this.db;
    this.db = undefined;
    if (db) {
      await db.close().catch(() => undefined);
      await rm(db.location, { recursive: true, force: true });
    }
  }

  private async open(): Promise<ClassicLevel<string, string>> {
    if (this.db) return this.db;
    if (this.closed) throw new Error('a walk moved keys to disk after its set was closed');
    await mkdir(this.root, { recursive: true });
    const db = new ClassicLevel<string, string>(join(this.root, `walk-keys.${randomUUID()}`), LEVEL_OPTIONS);
    await db.open();
    this.db = db;
    return db;
  }
}

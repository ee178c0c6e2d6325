/**
 * A walk's key set (producers/follow/walk-keys.ts) against a plain Set, over random interleavings of
 * adds, lookups and moves to disk, some of them left running while the walk goes on (a page's keys are
 * added while the previous page's move is still being written). Whatever the interleaving, it answers
 * `has` as the Set does, holds fewer than `limit` keys in memory once a move has been awaited, and
 * leaves nothing on disk once closed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { WalkKeys } from '../../../producers/follow/walk-keys.ts';

const root = mkdtempSync(join(tmpdir(), 'walk-keys-model-'));
after(() => rmSync(root, { recursive: true, force: true }));

type Command =
  | { op: 'add'; key: string }
  | { op: 'has'; key: string }
  | { op: 'settle' }
  | { op: 'settle-in-background' }
  | { op: 'yield' }
  | { op: 'tick' };

// Few distinct keys, so that keys are added again after they moved and looked up in every place.
const key = fc.integer({ min: 0, max: 30 }).map((n) => `runs/${n}`);
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: key.map((k) => ({ op: 'add' as const, key: k })) },
  { weight: 5, arbitrary: key.map((k) => ({ op: 'has' as const, key: k })) },
  { weight: 1, arbitrary: fc.constant({ op: 'settle' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'settle-in-background' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'yield' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'tick' as const }) },
);

describe('WalkKeys', () => {
  it('answers as a Set would, and holds at most `limit` keys in memory between pages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(command, { maxLength: 120 }),
        async (limit, commands) => {
          const keys = new WalkKeys(limit, root);
          const model = new Set<string>();
          const background: Promise<void>[] = [];
          try {
            for (const c of commands) {
              if (c.op === 'add') {
                keys.add(c.key);
                model.add(c.key);
              } else if (c.op === 'has') {
                assert.equal(keys.has(c.key), model.has(c.key), `has(${c.key})`);
              } else if (c.op === 'settle') {
                await keys.settle();
                assert.ok(keys.inMemory < limit, `${keys.inMemory} keys in memory after a settle`);
              } else if (c.op === 'settle-in-background') {
                background.push(keys.settle());
              } else if (c.op === 'yield') {
                // Lets a move in the background get on (or finish) between two steps of the walk.
                await new Promise((resolve) => setImmediate(resolve));
              } else {
                // Lets a move's own steps run but not LevelDB's write: a lookup lands while it is in flight.
                for (let i = 0; i < 5; i++) await Promise.resolve();
              }
            }
            await Promise.all(background);
            for (const k of model) assert.ok(keys.has(k), `${k} is still known at the end`);
            for (let n = 0; n <= 30; n++) assert.equal(keys.has(`runs/${n}`), model.has(`runs/${n}`));
          } finally {
            await keys.close();
          }
          assert.deepEqual(readdirSync(root), [], 'closed: nothing left on disk');
        },
      ),
      { numRuns: 150 },
    );
  });

  it('every key is found while a large move is being written', async () => {
    // A write of 20,000 keys takes long enough for many lookups to land on it.
    const keys = new WalkKeys(20_000, root);
    for (let n = 0; n < 20_000; n++) keys.add(`k${n}`);
    let written = false;
    const moving = keys.settle().then(() => void (written = true));
    let lookups = 0;
    while (!written) {
      for (let i = 0; i < 50; i++, lookups++) assert.ok(keys.has(`k${(lookups * 7919) % 20_000}`));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await moving;
    assert.ok(lookups > 50, `${lookups} lookups during the move`);
    assert.equal(keys.inMemory, 0);
    for (let n = 0; n < 20_000; n += 97) assert.ok(keys.has(`k${n}`), 'found on disk');
    assert.ok(!keys.has('k20000'));
    await keys.close();
  });

  it('a set that never reaches its limit never touches the disk', async () => {
    const keys = new WalkKeys(100, root);
    for (let n = 0; n < 99; n++) keys.add(`k${n}`);
    await keys.settle();
    assert.deepEqual(readdirSync(root), []);
    assert.equal(keys.inMemory, 99);
    await keys.close();
  });

  it('a write that fails keeps its keys findable and fails the settle', async () => {
    // The scratch store cannot be made under a file.
    const file = join(root, 'not-a-directory');
    writeFileSync(file, '');
    const keys = new WalkKeys(2, file);
    keys.add('a');
    keys.add('b');
    await assert.rejects(keys.settle());
    assert.ok(keys.has('a') && keys.has('b'), 'still known, from memory');
    await keys.close();
    rmSync(file);
  });
});

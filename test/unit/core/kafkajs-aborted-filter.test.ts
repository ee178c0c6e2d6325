/**
 * A read_committed consumer must never see a record of an aborted transaction. kafkajs 2.2.4 filters them
 * itself (src/consumer/filterAbortedMessages.js) from the fetch response's list of aborted transactions,
 * and as published it takes at most one of them into account per message: when a fetch starts inside two
 * aborted transactions, or one message passes the first offsets of several (interleaved transactions of
 * several producers, offsets that compaction removed), the later ones are noticed a message or more too
 * late and their records get through. The producers group exposed it: a unit's state loader read a cursor
 * from an aborted transaction and skipped the page it stood for (1,000 audit entries lost in a crash run),
 * and committed-record counts included aborted copies. patches/kafkajs+2.2.4.patch makes the filter take
 * every aborted transaction that has begun by each message, as the Java consumer does; this test runs
 * kafkajs's own Batch over fetch responses built from a model log and fails on the unpatched filter.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
// The class kafkajs's consumer builds each fetched partition's messages with.
const Batch = require('kafkajs/src/consumer/batch') as new (
  topic: string,
  fetchedOffset: string,
  partitionData: unknown,
) => { messages: Array<{ offset: string; value: Buffer | null }> };

interface LogEntry {
  offset: number;
  producerId: number;
  /** A data record of a transaction, or its end marker. */
  kind: 'data' | 'commit' | 'abort';
  /** The transaction (per producer, in order) it belongs to. */
  txn: number;
}

/** The message kafkajs's decoder makes of an entry (the fields the filter reads). */
function message(e: LogEntry) {
  const control = e.kind !== 'data';
  return {
    offset: String(e.offset),
    key: control ? Buffer.from([0, 0, 0, e.kind === 'commit' ? 1 : 0]) : Buffer.from(`k${e.offset}`),
    value: control ? null : Buffer.from(`p${e.producerId}t${e.txn}o${e.offset}`),
    isControlRecord: control,
    batchContext: { producerId: String(e.producerId), inTransaction: true },
  };
}

/**
 * What a broker answers a fetch from `from` with: the entries from there on (some gone, as compaction
 * leaves them) and every aborted transaction whose range reaches `from` or later, as the broker lists
 * them (by the offset of their end marker, not their first offset).
 */
function fetchResponse(log: LogEntry[], from: number, kept: (e: LogEntry) => boolean) {
  const txns = new Map<string, { first: number; last: number; producerId: number; aborted: boolean }>();
  for (const e of log) {
    const id = `${e.producerId}/${e.txn}`;
    const t = txns.get(id) ?? { first: e.offset, last: e.offset, producerId: e.producerId, aborted: false };
    t.last = e.offset;
    if (e.kind === 'abort') t.aborted = true;
    txns.set(id, t);
  }
  const aborted = [...txns.values()]
    .filter((t) => t.aborted && t.last >= from)
    .sort((a, b) => a.last - b.last)
    .map((t) => ({ producerId: String(t.producerId), firstOffset: String(t.first) }));
  return {
    partition: 0,
    highWatermark: String(log.length),
    abortedTransactions: aborted,
    messages: log.filter((e) => e.offset >= from && (e.kind !== 'data' || kept(e))).map(message),
  };
}

/** A log of interleaved transactions: each producer runs one at a time, each ends committed or aborted. */
const logs = fc
  .array(
    fc.record({
      producer: fc.integer({ min: 1, max: 4 }),
      records: fc.integer({ min: 1, max: 4 }),
      abort: fc.boolean(),
    }),
    {
      minLength: 1,
      maxLength: 14,
    },
  )
  .chain((txns) =>
    fc.tuple(
      fc.constant(txns),
      fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 200, maxLength: 200 }),
    ),
  )
  .map(([txns, order]) => {
    // Each producer's transactions in sequence; the producers' steps interleaved by `order`.
    const queues = new Map<number, Array<Array<'data' | 'commit' | 'abort'>>>();
    for (const t of txns) {
      const steps: Array<'data' | 'commit' | 'abort'> = [
        ...Array<'data'>(t.records).fill('data'),
        t.abort ? 'abort' : 'commit',
      ];
      queues.set(t.producer, [...(queues.get(t.producer) ?? []), steps]);
    }
    const cursor = new Map([...queues.keys()].map((p) => [p, { txn: 0, step: 0 }]));
    const log: LogEntry[] = [];
    let i = 0;
    while ([...cursor.keys()].length > 0) {
      const live = [...cursor.keys()];
      const producerId = live[(order[i++ % order.length] ?? 0) % live.length]!;
      const c = cursor.get(producerId)!;
      const txn = queues.get(producerId)![c.txn]!;
      log.push({ offset: log.length, producerId, kind: txn[c.step]!, txn: c.txn });
      c.step += 1;
      if (c.step === txn.length) {
        c.txn += 1;
        c.step = 0;
        if (c.txn === queues.get(producerId)!.length) cursor.delete(producerId);
      }
    }
    return log;
  });

describe("kafkajs's read_committed filter (patched)", () => {
  it('drops the records of two aborted transactions that a fetch starts inside', () => {
    // p1 and p2 both abort; the fetch starts at offset 2, past both first offsets.
    const log: LogEntry[] = [
      { offset: 0, producerId: 1, kind: 'data', txn: 0 },
      { offset: 1, producerId: 2, kind: 'data', txn: 0 },
      { offset: 2, producerId: 2, kind: 'data', txn: 0 },
      { offset: 3, producerId: 1, kind: 'data', txn: 0 },
      { offset: 4, producerId: 1, kind: 'abort', txn: 0 },
      { offset: 5, producerId: 2, kind: 'abort', txn: 0 },
      { offset: 6, producerId: 3, kind: 'data', txn: 0 },
      { offset: 7, producerId: 3, kind: 'commit', txn: 0 },
    ];
    const batch = new Batch(
      't',
      '2',
      fetchResponse(log, 2, () => true),
    );
    assert.deepEqual(
      batch.messages.map((m) => m.offset),
      ['6'],
      'only the committed record',
    );
  });

  it('returns exactly the committed records, whatever the interleaving, fetch offset and compaction', () => {
    fc.assert(
      fc.property(logs, fc.nat(), fc.func(fc.boolean()), (log, start, keep) => {
        const from = start % log.length;
        const kept = (e: LogEntry) => keep(e.offset);
        const outcome = new Map<string, 'commit' | 'abort'>();
        for (const e of log) if (e.kind !== 'data') outcome.set(`${e.producerId}/${e.txn}`, e.kind);
        const committed = log
          .filter((e) => e.offset >= from && e.kind === 'data' && kept(e))
          .filter((e) => outcome.get(`${e.producerId}/${e.txn}`) === 'commit')
          .map((e) => String(e.offset));
        const batch = new Batch('t', String(from), fetchResponse(log, from, kept));
        assert.deepEqual(
          batch.messages.map((m) => m.offset),
          committed,
        );
      }),
      { numRuns: 2_000 },
    );
  });
});

/**
 * Every record the producers publish decodes with Confluent's own Python client (confluent-kafka's
 * Consumer and AvroDeserializer on fastavro, logical types on, schemas fetched by id from the registry's
 * Confluent-compatible API): after a run against the simulator with --edge-values and hand-made
 * boundary records for every resource, decode_all.py reads every message of every topic of the run and
 * must report no error, the exact message counts, and exactly the nulled values the producers noted.
 * Then Apache Avro's Java library (test/jvm/DecodeAll.java) reads the same messages the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../core/config.ts';
import { producerDlqTopic, resourceTopic, valueSubject } from '../../core/topics.ts';
import { startProducers } from '../../producers/daemon.ts';
import { RESOURCES, RESOURCE_META, valueSchema, type AvroSchema } from '../../schemas/index.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { quoteIdentifier } from '../../sinks/schema/sql.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { EDGE_VALUES, edgeEmits, expectedEdgeNulls } from '../helpers/edge-emits.ts';
import { decodeWithJvm, jvmUnavailable } from '../helpers/jvm-decode.ts';
import { quietLogger, readTopics, uniqueName, waitFor, type DecodedMessage } from '../helpers/pipeline.ts';
import { decodeWithConfluentPython, pythonUnavailable, type DecodeReport } from '../helpers/python-decode.ts';
import {
  SMALL_SCALE,
  cleanUp,
  highWaterMarks,
  pipelineConfig,
  registerSchema,
  registryUrl,
  scalar,
  setSubjectCompatibility,
  testClickHouse,
} from '../helpers/sink-pipeline.ts';

/** What fastavro 1.13 turns into datetimes; it reads timestamp-nanos as a plain int. */
const PYTHON_TIME_TYPES = new Set([
  'timestamp-millis',
  'timestamp-micros',
  'local-timestamp-millis',
  'local-timestamp-micros',
]);
/** What Avro's Java TimeConversions turn into Instant / LocalDateTime. */
const JAVA_TIME_TYPES = new Set([...PYTHON_TIME_TYPES, 'timestamp-nanos', 'local-timestamp-nanos']);

/** Non-null values of the given logical types in a decoded record. */
function timeValues(types: ReadonlySet<string>, schema: AvroSchema, value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (Array.isArray(schema)) return timeValues(types, schema.find((b) => b !== 'null') as AvroSchema, value);
  if (typeof schema !== 'object') return 0;
  const s = schema as Record<string, unknown>;
  if (typeof s.logicalType === 'string') return types.has(s.logicalType) ? 1 : 0;
  if (s.type === 'record') {
    const record = value as Record<string, unknown>;
    return (s.fields as { name: string; type: AvroSchema }[]).reduce(
      (n, f) => n + timeValues(types, f.type, record[f.name]),
      0,
    );
  }
  if (s.type === 'array')
    return (value as unknown[]).reduce<number>((n, v) => n + timeValues(types, s.items as AvroSchema, v), 0);
  if (typeof s.type === 'object') return timeValues(types, s.type as AvroSchema, value);
  return 0;
}

/** The sum of the longs in a decoded record, those of the given (date-time) logical types excepted. */
function longSum(timeTypes: ReadonlySet<string>, schema: AvroSchema, value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (Array.isArray(schema)) return longSum(timeTypes, schema.find((b) => b !== 'null') as AvroSchema, value);
  if (schema === 'long' || schema === 'int') return BigInt(value as number | bigint);
  if (typeof schema !== 'object') return 0n;
  const s = schema as Record<string, unknown>;
  if (typeof s.logicalType === 'string')
    return timeTypes.has(s.logicalType) ? 0n : BigInt(value as number | bigint);
  if (s.type === 'record') {
    const record = value as Record<string, unknown>;
    return (s.fields as { name: string; type: AvroSchema }[]).reduce(
      (n, f) => n + longSum(timeTypes, f.type, record[f.name]),
      0n,
    );
  }
  if (s.type === 'array')
    return (value as unknown[]).reduce<bigint>(
      (n, v) => n + longSum(timeTypes, s.items as AvroSchema, v),
      0n,
    );
  if (typeof s.type === 'object' || s.type === 'long') return longSum(timeTypes, s.type as AvroSchema, value);
  return 0n;
}

/** Counts and nulled values one reader saw on every resource topic match what the producers wrote. */
function assertSameAsWritten(
  reader: string,
  report: DecodeReport,
  config: Config,
  node: Map<string, DecodedMessage[]>,
  published: ReadonlyMap<string, number>,
  deadLettered: ReadonlyMap<string, number>,
  timeTypes: ReadonlySet<string>,
): void {
  assert.deepEqual(report.errors, [], `${reader}: decode errors`);
  for (const r of RESOURCES) {
    const topic = resourceTopic(config, r);
    const seen = report.topics[topic];
    assert.ok(seen, `${reader}: ${topic} was not read`);
    const messages = node.get(topic)!;
    assert.equal(seen.format, 'avro', topic);
    // Exact: what the producers counted as committed, what avsc read, what this reader read.
    assert.equal(seen.messages, published.get(r), `${reader}: ${r} messages`);
    assert.equal(seen.tombstones, 0, r);
    assert.deepEqual(seen.nulled, nulledPaths(messages), `${reader}: ${r} nulled values`);
    const times = messages.reduce((n, m) => n + timeValues(timeTypes, valueSchema(r), m.value), 0);
    assert.equal(seen.timestamps, times, `${reader}: ${r} values decoded as date-times`);
    if (seen.int_sum !== undefined) {
      // Every int64, extremes included, reads back as the same number in both languages.
      const sum = messages.reduce((n, m) => n + longSum(timeTypes, valueSchema(r), m.value), 0n);
      assert.equal(BigInt(seen.int_sum), sum, `${reader}: ${r} sum of the integers decoded`);
    }
    const dlq = report.topics[producerDlqTopic(config, r)];
    assert.equal(dlq?.messages ?? 0, deadLettered.get(r) ?? 0, `${reader}: ${r} dead letters`);
    if (dlq) assert.equal(dlq.format, 'json', r);
  }
}

function nulledPaths(messages: readonly DecodedMessage[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of messages)
    for (const p of (m.value?._nulled_fields as string[] | undefined) ?? []) out[p] = (out[p] ?? 0) + 1;
  return out;
}

async function subjectVersions(config: Config, subject: string): Promise<number[]> {
  const res = await fetch(registryUrl(config, `/subjects/${encodeURIComponent(subject)}/versions`));
  return (await res.json()) as number[];
}

const unavailable = pythonUnavailable();

describe(
  "every published record decodes with Confluent's Python client and Avro's Java library",
  { skip: unavailable },
  () => {
    const prefix = uniqueName('itcd');
    let sim: Simulator;
    let config: Config;

    before(async () => {
      sim = await startSimulator({
        port: 0,
        seed: 'confluent-decode',
        scale: SMALL_SCALE,
        badRecords: 0.05,
        edgeValues: true,
        logger: quietLogger,
      });
      config = pipelineConfig(prefix, sim);
    });
    after(async () => {
      await sim?.close();
      if (config) await cleanUp(config);
    });

    // Filled by the first test, read by the others.
    let published = new Map<string, number>();
    let deadLettered = new Map<string, number>();
    let node = new Map<string, DecodedMessage[]>();

    test('edge values of every resource: Python decodes all with 0 errors, exact counts, nulled values noted', async () => {
      // What the registry holds today: the schemas before _nulled_fields. The producers must register
      // the current ones on top under BACKWARD_TRANSITIVE, or start-up fails.
      for (const r of RESOURCES) {
        const subject = valueSubject(resourceTopic(config, r));
        const now = valueSchema(r);
        await setSubjectCompatibility(config, subject, 'BACKWARD_TRANSITIVE');
        await registerSchema(config, subject, {
          ...now,
          fields: now.fields.filter((f) => f.name !== '_nulled_fields'),
        });
      }

      const producers = await startProducers(config, quietLogger, { now: () => sim.now() });
      const edges = edgeEmits();
      try {
        await waitFor(
          'every producer job to finish a poll',
          () => [...producers.scheduler.status.values()].every((s) => s.polls >= 1 && !s.running),
          150_000,
        );
        for (const [name, s] of producers.scheduler.status)
          assert.equal(s.lastError, undefined, `${name}: ${s.lastError}`);
        // Through the same unit the jobs use: encoder, transactional publisher, counters.
        await producers.commit({ emits: edges, dead: [], state: [] });
        published = new Map(producers.published);
        deadLettered = new Map(producers.deadLettered);
      } finally {
        await producers.stop();
      }
      for (const r of RESOURCES)
        assert.equal((await subjectVersions(config, valueSubject(resourceTopic(config, r)))).length, 2, r);

      const report = await decodeWithConfluentPython(config);
      const topics = RESOURCES.flatMap((r) => [resourceTopic(config, r), producerDlqTopic(config, r)]);
      node = await readTopics(config, topics);
      assertSameAsWritten('python', report, config, node, published, deadLettered, PYTHON_TIME_TYPES);

      const edgeKeys = new Set(edges.map((e) => e.key));
      const expectedNulls = expectedEdgeNulls();
      for (const r of RESOURCES) {
        const messages = node.get(resourceTopic(config, r))!;
        assert.ok((published.get(r) ?? 0) > EDGE_VALUES.length, `${r}: too few records to prove anything`);
        assert.equal(messages.length, published.get(r), `${r}: messages read by avsc`);
        // The hand-made boundary records: exactly the out-of-range values were nulled.
        const edgeMessages = messages.filter((m) => edgeKeys.has(String(m.key)));
        assert.equal(edgeMessages.length, edges.filter((e) => e.resource === r).length, `${r}: edge records`);
        assert.deepEqual(nulledPaths(edgeMessages), expectedNulls[r], `${r}: edge values nulled`);
      }
      // The issue's own case, served by the simulator's --edge-values: batch 1's created_at_ms is
      // -9007199254740991 (and its updated_at_ms 9007199254740991, in the year 285428). Both arrive as
      // null with the note, beside the hand-made ones.
      const batch1 = node.get(resourceTopic(config, 'batches'))!.find((m) => String(m.key) === '1');
      assert.ok(batch1?.value, 'batch 1 published');
      assert.equal(batch1.value.created_at_ms, null);
      assert.equal(batch1.value.updated_at_ms, null);
      assert.deepEqual(batch1.value._nulled_fields, ['created_at_ms', 'updated_at_ms']);
      assert.match(String(batch1.value._raw_json), /"created_at_ms":-9007199254740991/);
      assert.match(String(batch1.value._raw_json), /"updated_at_ms":9007199254740991/);
    });

    test('the sinks load every edge-value record into ClickHouse: no dead letter, every key', async () => {
      assert.ok(published.size > 0, 'the first test published nothing');
      const ch = testClickHouse(config);
      const sinks = await startSinks(config, quietLogger, { fromBeginning: true });
      try {
        const targets = await highWaterMarks(
          config,
          RESOURCES.map((r) => resourceTopic(config, r)),
        );
        await waitFor('the sinks to catch up', () => sinks.runner.caughtUp(targets), 120_000);
        assert.equal(sinks.runner.failure, undefined);
        assert.equal(sinks.runner.stats.deadLetters, 0, 'nothing dead-lettered by the sinks');
        const db = quoteIdentifier(config.clickhouse.database);
        for (const r of RESOURCES) {
          // Distinct keys on both sides: a record without id lands under its content-hash stand-in.
          const keys = new Set(node.get(resourceTopic(config, r))!.map((m) => String(m.key)));
          const keyColumns = RESOURCE_META[r].key.map(quoteIdentifier).join(', ');
          const n = await scalar(
            ch,
            `SELECT count() AS n FROM (SELECT DISTINCT ${keyColumns} FROM ${db}.${quoteIdentifier(r)})`,
          );
          assert.equal(n, keys.size, `${r}: every key in ClickHouse`);
        }
      } finally {
        await sinks.stop();
        await ch.close();
      }
    });

    test("the same messages decode with Avro's Java library", { skip: jvmUnavailable() }, async () => {
      assert.ok(published.size > 0, 'the first test published nothing');
      const report = await decodeWithJvm(config);
      assertSameAsWritten('jvm', report, config, node, published, deadLettered, JAVA_TIME_TYPES);
    });
  },
);

/**
 * End to end through the real services: register an Avro schema in the registry's Confluent-compatible
 * API, produce 1,000 Confluent-framed records to a fresh topic, consume and decode them, write them to a
 * fresh ClickHouse table and read exactly those rows back. Everything it creates is named after one run id
 * and removed at the end.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type Producer } from 'kafkajs';
import { testEndpoints } from '../helpers/stack-env.ts';

const N = 1000;
const STEP_TIMEOUT_MS = 90_000;

const endpoints = testEndpoints();
const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const topic = `smoke-test-${runId}`;
const subject = `${topic}-value`;
const table = `smoke_test_${runId}`;

const schemaV1 = {
  type: 'record',
  name: 'SmokeRecord',
  namespace: 'instabase.test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'active', type: 'boolean' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'created_at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
};
// Adds a field with a default: backward compatible.
const schemaV2 = { ...schemaV1, fields: [...schemaV1.fields, { name: 'extra', type: 'int', default: 0 }] };
// Changes a field's type: not backward compatible.
const schemaBroken = { ...schemaV1, fields: [{ name: 'id', type: 'string' }, ...schemaV1.fields.slice(1)] };

interface SmokeRecord {
  id: number;
  name: string;
  amount: number;
  active: boolean;
  tags: string[];
  note: string | null;
  created_at: number;
}

function makeRecord(i: number): SmokeRecord {
  return {
    id: i + 1,
    // quotes, backslash, non-ASCII and a tab: everything JSONEachRow and Avro must carry unchanged
    name: `record ${i} "quoted" \\ back\tslash ünïcødé ✓`,
    amount: i / 7 - 50,
    active: i % 3 === 0,
    tags: i % 4 === 0 ? [] : [`t${i % 5}`, `g${i % 7}`],
    note: i % 2 === 0 ? null : `note ${i}`,
    created_at: 1_700_000_000_000 + i * 1_000,
  };
}

const expected = Array.from({ length: N }, (_, i) => makeRecord(i));

/** Bounds a wait; `what` may be a function so the message can report progress made until the timeout. */
async function within<T>(what: string | (() => string), ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${typeof what === 'function' ? what() : what}: no result within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function utcDateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

async function compatible(schema: object): Promise<boolean> {
  // The library has no public method for this ccompat call.
  const res = await fetch(
    `${endpoints.schemaRegistryUrl}/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`,
    {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(schema) }),
      signal: AbortSignal.timeout(15_000),
    },
  );
  const body = (await res.json()) as { is_compatible?: boolean };
  assert.equal(res.status, 200, `compatibility check answered ${res.status}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.is_compatible, 'boolean');
  return body.is_compatible === true;
}

describe('smoke: registry → Kafka → ClickHouse', { timeout: 5 * STEP_TIMEOUT_MS }, () => {
  const registry = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
  const kafka = new Kafka({
    clientId: `smoke-${runId}`,
    brokers: endpoints.kafkaBrokers,
    logLevel: logLevel.ERROR,
    connectionTimeout: 5_000,
    requestTimeout: 15_000,
  });
  let admin: Admin;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  let clickhouse: ClickHouseClient;
  let schemaId = 0;
  const consumed = new Map<number, SmokeRecord>();

  before(async () => {
    admin = kafka.admin();
    await within('Kafka admin connect', 30_000, admin.connect());
    const created = await within(
      'create topic',
      30_000,
      admin.createTopics({
        topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
        waitForLeaders: true,
      }),
    );
    assert.equal(created, true, `topic ${topic} already existed`);
    clickhouse = createClient({
      url: endpoints.clickhouseUrl,
      username: endpoints.clickhouseUser,
      password: endpoints.clickhousePassword,
      request_timeout: 30_000,
    });
  });

  after(async () => {
    const quietly = async (what: string, p: Promise<unknown>) => {
      try {
        await within(what, 15_000, p);
      } catch (err) {
        process.stderr.write(`cleanup: ${what} failed: ${(err as Error).message}\n`);
      }
    };
    if (consumer) await quietly('consumer disconnect', consumer.disconnect());
    if (producer) await quietly('producer disconnect', producer.disconnect());
    await quietly('delete topic', admin.deleteTopics({ topics: [topic] }));
    await quietly('admin disconnect', admin.disconnect());
    await quietly('drop table', clickhouse.command({ query: `DROP TABLE IF EXISTS ${table}` }));
    await quietly('close ClickHouse client', clickhouse.close());
    // Confluent semantics: a soft delete first, then the permanent one.
    for (const suffix of ['', '?permanent=true']) {
      await quietly(
        `delete subject${suffix}`,
        fetch(`${endpoints.schemaRegistryUrl}/subjects/${encodeURIComponent(subject)}${suffix}`, {
          method: 'DELETE',
          signal: AbortSignal.timeout(10_000),
        }),
      );
    }
  });

  test('registers the Avro schema and reads it back through the Confluent-compatible API', async () => {
    const raw = JSON.stringify(schemaV1);
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: raw }, { subject });
    assert.ok(Number.isInteger(id) && id > 0, `schema id ${id}`);
    schemaId = id;

    const again = await registry.register({ type: SchemaType.AVRO, schema: raw }, { subject });
    assert.equal(again.id, id, 'registering the same schema twice must return the same id');

    // A fresh client has no cache, so this really asks GET /schemas/ids/{id}.
    const fresh = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
    const fetched = (await fresh.getSchema(id)) as unknown as {
      name?: string;
      toBuffer(v: unknown): Buffer;
      fromBuffer(b: Buffer): unknown;
    };
    assert.equal(fetched.name, 'instabase.test.SmokeRecord');
    assert.deepEqual({ ...(fetched.fromBuffer(fetched.toBuffer(expected[1])) as object) }, expected[1]);

    assert.equal(await fresh.getLatestSchemaId(subject), id);
    const pretty = JSON.stringify(schemaV1, null, 2);
    assert.equal(
      await fresh.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: pretty }),
      id,
      'lookup by a reformatted but equal schema',
    );

    assert.equal(await compatible(schemaV2), true, 'adding a field with a default is backward compatible');
    assert.equal(await compatible(schemaBroken), false, 'changing a field type is not backward compatible');
    assert.equal(await fresh.getLatestSchemaId(subject), id, 'a compatibility check registers nothing');
  });

  test(
    `produces exactly ${N} Confluent-framed Avro records to a fresh topic`,
    { timeout: STEP_TIMEOUT_MS },
    async () => {
      assert.ok(schemaId > 0, 'needs the registered schema');
      producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
      });
      await within('producer connect', 30_000, producer.connect());
      for (let start = 0; start < N; start += 100) {
        const batch = expected.slice(start, start + 100);
        const messages = await Promise.all(
          batch.map(async (r) => ({ key: String(r.id), value: await registry.encode(schemaId, r) })),
        );
        assert.equal(messages[0]?.value[0], 0, 'Confluent wire format starts with magic byte 0');
        assert.equal(messages[0]?.value.readInt32BE(1), schemaId, 'then the 4-byte schema id');
        await within('produce batch', 30_000, producer.send({ topic, messages, acks: -1 }));
      }
      const offsets = await within('fetch topic offsets', 15_000, admin.fetchTopicOffsets(topic));
      const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
      assert.equal(total, N, `topic holds ${total} records`);
    },
  );

  test(`consumes and decodes all ${N} records`, { timeout: STEP_TIMEOUT_MS }, async () => {
    consumer = kafka.consumer({
      groupId: `smoke-${runId}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 500,
    });
    await within('consumer connect', 30_000, consumer.connect());
    await consumer.subscribe({ topic, fromBeginning: true });
    let failure: unknown;
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    await consumer.run({
      eachMessage: async ({ message }) => {
        try {
          assert.ok(message.value, 'every record has a value');
          const rec = (await registry.decode(message.value)) as SmokeRecord;
          assert.equal(String(rec.id), message.key?.toString(), 'key matches the record id');
          // At-least-once: a rebalance may redeliver a record, which must then be identical.
          const seen = consumed.get(rec.id);
          if (seen) assert.deepEqual({ ...rec }, seen);
          consumed.set(rec.id, { ...rec });
        } catch (err) {
          failure ??= err;
          resolveDone();
        }
        if (consumed.size >= N) resolveDone();
      },
    });
    await within(() => `consuming ${N} records (got ${consumed.size})`, 60_000, done).finally(() =>
      within('consumer stop', 15_000, consumer!.stop()),
    );
    if (failure) throw failure;
    assert.equal(consumed.size, N);
    const decoded = [...consumed.values()].sort((a, b) => a.id - b.id);
    assert.deepEqual(decoded, expected);
  });

  test(
    `writes them to a fresh ClickHouse table and reads back exactly those ${N} rows`,
    { timeout: STEP_TIMEOUT_MS },
    async () => {
      assert.equal(consumed.size, N, 'needs the consumed records');
      // `ENGINE = MergeTree() ORDER BY` and these types parse on ClickHouse 18.16 and on current releases.
      await clickhouse.command({
        query: `CREATE TABLE ${table} (
        id UInt64,
        name String,
        amount Float64,
        active UInt8,
        tags Array(String),
        note Nullable(String),
        created_at DateTime('UTC')
      ) ENGINE = MergeTree() ORDER BY id`,
      });
      const rows = [...consumed.values()].map((r) => ({
        ...r,
        active: r.active ? 1 : 0,
        created_at: utcDateTime(r.created_at),
      }));
      // 18.16 has no JSONCompactEachRow, so the format is spelled out rather than left to the client's default.
      await clickhouse.insert({ table, values: rows, format: 'JSONEachRow' });

      const countRes = await clickhouse.query({
        query: `SELECT count() AS n FROM ${table}`,
        format: 'JSONEachRow',
      });
      const [count] = await countRes.json<{ n: string | number }>();
      assert.equal(Number(count?.n), N);

      const res = await clickhouse.query({
        query: `SELECT id, name, amount, active, tags, note, toUnixTimestamp(created_at) AS created_s
              FROM ${table} ORDER BY id`,
        format: 'JSONEachRow',
      });
      const back = await res.json<{
        id: string | number;
        name: string;
        amount: number;
        active: number;
        tags: string[];
        note: string | null;
        created_s: number;
      }>();
      // UInt64 comes back as a JSON string (output_format_json_quote_64bit_integers), so compare as numbers.
      const normalized = back.map((r) => ({
        id: Number(r.id),
        name: r.name,
        amount: r.amount,
        active: r.active === 1,
        tags: r.tags,
        note: r.note,
        created_at: r.created_s * 1000,
      }));
      assert.equal(normalized.length, N);
      assert.deepEqual(normalized, expected);
    },
  );
});

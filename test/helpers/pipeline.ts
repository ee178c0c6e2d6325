import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig, type Config, type ConfigInput } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { testEndpoints } from './stack-env.ts';

export const quietLogger = createLogger('test', undefined, process.env.LOG_LEVEL ?? 'error');

/** A unique prefix per test run, so topics, groups and databases never collide with another run. */
export function uniqueName(base: string): string {
  return `${base}${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

/**
 * Audit retention in tests. Records carry their fetch time as Kafka timestamp, which under the
 * simulator's virtual clock (it starts on 2026-01-10) lies months back: with the default 30 days, the
 * broker's next retention sweep would delete a test's audit records while it still reads them.
 */
const TEST_AUDIT_RETENTION_MS = 100 * 365 * 24 * 3_600_000;

/** The real stack's endpoints with a fresh topic prefix and database; nothing read from the cwd. */
export function testConfig(
  prefix: string,
  overrides: ConfigInput = {},
  env: Record<string, string> = {},
): Config {
  const e = testEndpoints();
  return loadConfig({
    cwd: mkdtempSync(join(tmpdir(), 'ibs-cfg-')),
    env: {
      KAFKA_BROKERS: e.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: e.schemaRegistryUrl,
      CLICKHOUSE_URL: e.clickhouseUrl,
      CLICKHOUSE_USER: e.clickhouseUser,
      CLICKHOUSE_PASSWORD: e.clickhousePassword,
      TOPIC_PREFIX: `${prefix}.`,
      CLICKHOUSE_DATABASE: prefix.replace(/[^A-Za-z0-9_]/g, '_'),
      KAFKA_CLIENT_ID: prefix,
      ...env,
    },
    overrides: { ...overrides, kafka: { auditRetentionMs: TEST_AUDIT_RETENTION_MS, ...overrides.kafka } },
  });
}

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface DecodedMessage {
  partition: number;
  offset: string;
  key: unknown;
  value: Record<string, unknown> | null;
  raw: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Everything committed in some topics, read with one throwaway consumer and decoded with nothing but
 * the registry and avsc (the way any third-party consumer would). Dead-letter topics (names ending in
 * dlq) hold JSON and come back undecoded.
 */
export async function readTopics(config: Config, topics: string[]): Promise<Map<string, DecodedMessage[]>> {
  const kafka = new Kafka({
    clientId: 'test-reader',
    brokers: config.kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
  const types = new Map<number, avro.Type>();
  const decode = async (buf: Buffer | null): Promise<unknown> => {
    if (!buf) return null;
    const id = buf.readInt32BE(1);
    let type = types.get(id);
    if (!type) {
      // A plain avsc long cannot hold every int64; a bigint-backed long keeps the test independent of ours.
      type = avro.Type.forSchema(JSON.parse(await schemaText(config, id)), {
        typeHook: bigLongHook,
      } as Partial<avro.ForSchemaOptions>);
      types.set(id, type);
    }
    return type.fromBuffer(buf.subarray(5));
  };
  const out = new Map<string, DecodedMessage[]>(topics.map((t) => [t, []]));
  const failures: string[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('reader-'), readUncommitted: false });
  // The end is each partition's high-water mark taken now. Transaction markers occupy offsets, so the
  // last record can sit below it; kafkajs reports the end of every batch, marker-only ones included,
  // and a batch that ends at the mark means the partition is read.
  const admin = kafka.admin();
  await admin.connect();
  const remaining = new Set<string>();
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic))
      if (Number(p.high) > Number(p.low)) remaining.add(`${topic}:${p.partition}:${p.high}`);
  }
  await admin.disconnect();
  const ends = new Map(
    [...remaining].map((k) => [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))]),
  );
  const reached = new Set<string>();
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const tp = `${payload.topic}:${payload.partition}`;
    if (Number(payload.lastOffset) + 1 >= (ends.get(tp) ?? 0)) reached.add(tp);
  });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const json = topic.endsWith('dlq');
      try {
        out.get(topic)!.push({
          partition,
          offset: message.offset,
          key: json ? message.key?.toString() : await decode(message.key),
          value: json ? null : ((await decode(message.value)) as Record<string, unknown> | null),
          raw: message.value,
          headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
        });
      } catch (err) {
        // Thrown here, kafkajs would retry the message forever; the caller fails on the collected error.
        failures.push(`${topic}/${partition}@${message.offset}: ${(err as Error).message}`);
      }
    },
  });
  await waitFor(
    'topics to be read to their high-water marks',
    () => [...ends.keys()].every((tp) => reached.has(tp)),
    90_000,
  );
  await consumer.disconnect();
  if (failures.length) throw new Error(`undecodable messages: ${failures.slice(0, 3).join('; ')}`);
  return out;
}

export async function readTopic(config: Config, topic: string): Promise<DecodedMessage[]> {
  return (await readTopics(config, [topic])).get(topic)!;
}

async function schemaText(config: Config, id: number): Promise<string> {
  const res = await fetch(`${config.registry.url}/schemas/ids/${id}`);
  const body = (await res.json()) as { schema: string };
  return body.schema;
}

const bigLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

/** Every long, logical or not, as a bigint: avsc's own long refuses values past 2^53. */
function bigLongHook(schema: unknown): avro.Type | undefined {
  if (schema === 'long') return bigLong;
  if (schema && typeof schema === 'object' && (schema as { type?: unknown }).type === 'long') return bigLong;
  return undefined;
}

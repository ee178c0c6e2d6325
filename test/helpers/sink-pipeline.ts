/**
 * Helpers for the sink integration tests: producers run once against the simulator, the simulator's
 * ground truth per resource, a ClickHouse client that reads Int64 back exactly, high-water marks,
 * committed offsets, hand-made wire-format messages and clean-up of everything a test created.
 */
import assert from 'node:assert/strict';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import avro from 'avsc';
import { Kafka, logLevel, type Message } from 'kafkajs';
import type { Config, ConfigInput } from '../../core/config.ts';
import type { ResourceName } from '../../core/resources.ts';
import {
  ensureTopics,
  keySubject,
  pipelineTopicSpecs,
  resourceTopic,
  valueSubject,
} from '../../core/topics.ts';
import { startProducers } from '../../producers/daemon.ts';
import { avroOptions, entityKey, valueSchema } from '../../schemas/index.ts';
import { startSimulator, type Simulator, type SimScale } from '../../sim/index.ts';
import { quietLogger, testConfig, waitFor } from './pipeline.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

export const SMALL_SCALE: Partial<SimScale> = {
  batches: 130,
  runs: 14,
  filesPerRun: 2,
  docsPerFile: 2,
  fieldsPerDoc: 3,
  auditLogs: 450,
  conversations: 4,
  docsPerConversation: 2,
  queries: 4,
  files: 12,
};

export async function startSim(seed: string, scale: Partial<SimScale>, badRecords = 0): Promise<Simulator> {
  return startSimulator({ port: 0, seed, scale, badRecords, logger: quietLogger });
}

/** The config producers and sinks share in a test: a fresh prefix and database, the simulator's API. */
export function pipelineConfig(prefix: string, sim: Simulator, overrides: ConfigInput = {}): Config {
  return testConfig(
    prefix,
    {
      ...overrides,
      producers: {
        files: sim.expected.files().map((f) => f.path),
        queryIds: sim.expected.queryIds(),
        initialLookbackMs: 5 * YEAR_MS,
        defaultIntervalMs: 3_600_000,
        auditLogsSettleMs: 0,
        batchesPageSize: 100,
        auditLogsPageSize: 500,
        ...overrides.producers,
      },
      sinks: {
        flushRows: 5_000,
        flushMs: 200,
        retryMaxMs: 2_000,
        shutdownTimeoutMs: 10_000,
        ...overrides.sinks,
      },
    },
    { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token },
  );
}

/** One poll of every job, then the producers stop; fails on any job error. */
export async function produceOnce(config: Config, sim: Simulator): Promise<void> {
  const producers = await startProducers(config, quietLogger, { now: () => sim.now() });
  try {
    await waitFor(
      'every producer job to finish a poll',
      () => [...producers.scheduler.status.values()].every((s) => s.polls >= 1 && !s.running),
      150_000,
    );
    for (const [name, s] of producers.scheduler.status)
      assert.equal(s.lastError, undefined, `${name}: ${s.lastError}`);
  } finally {
    await producers.stop();
  }
}

export interface ExpectedRows {
  /** Valid records per resource topic (= rows of <resource>_current, one per key). */
  records: Record<ResourceName, number>;
  /** Rows of runs_results_fields: one per extracted field of every published document. */
  runsResultsFields: number;
  /** Runs whose results are published (COMPLETE ones). */
  completeRunIds: string[];
}

/** The simulator's ground truth at its current time (the producers.test.ts arithmetic). */
export function expectedRows(sim: Simulator, scale: Partial<SimScale>): ExpectedRows {
  const e = sim.expected;
  const docsPerFile = scale.docsPerFile ?? 2;
  const fieldsPerDoc = scale.fieldsPerDoc ?? 3;
  const completeRuns = e.runs().keys.filter((id) => e.runResults(id).total > 0);
  const documents = completeRuns.reduce((n, id) => n + e.runResults(id).keys.length * docsPerFile, 0);
  let convDocs = 0;
  let metadata = 0;
  for (const id of e.conversations().keys) {
    const docs = e.conversationDocuments(id);
    convDocs += docs.keys.length;
    for (const did of docs.keys) if (e.documentMetadataValid(id, did)) metadata += 1;
  }
  const audit = e.auditLogs({ end_time: String(sim.now()) });
  return {
    records: {
      batches: e.batches().keys.length,
      // Files are walked for every batch with an id, valid or not; a node without full_path is valid.
      batch_files: [...e.batches().keys, ...e.batches().invalidKeys].reduce<number>((n, id) => {
        const files = e.batchFiles(String(id));
        return n + files.keys.length + (files.withoutId ?? 0);
      }, 0),
      runs: e.runs().keys.length,
      runs_results: documents,
      conversations: e.conversations().keys.length,
      conversation_documents: convDocs,
      conversation_document_metadata: metadata,
      queries_status: e.queryIds().filter((id) => e.query(id)!.valid).length,
      files_metadata: e.files().filter((f) => f.valid).length,
      audit_logs: audit.total - audit.invalidCount,
    },
    runsResultsFields: documents * fieldsPerDoc,
    completeRunIds: completeRuns,
  };
}

/** A client that reads Int64 as exact strings and selects no database. */
export function testClickHouse(config: Config, url = config.clickhouse.url): ClickHouseClient {
  return createClient({
    url,
    username: config.clickhouse.user,
    password: config.clickhouse.password,
    request_timeout: 30_000,
    log: { level: ClickHouseLogLevel.OFF },
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
  });
}

export async function select<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await ch.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

export async function scalar(ch: ClickHouseClient, query: string): Promise<number> {
  const [row] = await select<{ n: string | number }>(ch, query);
  return Number(row?.n ?? NaN);
}

/** count() of a table, 0 when it does not exist yet. */
export async function countRows(ch: ClickHouseClient, database: string, table: string): Promise<number> {
  const exists = await scalar(
    ch,
    `SELECT count() AS n FROM system.tables WHERE database = '${database}' AND name = '${table}'`,
  );
  return exists ? scalar(ch, `SELECT count() AS n FROM \`${database}\`.\`${table}\``) : 0;
}

export function plainKafka(config: Config): Kafka {
  return new Kafka({
    clientId: `${config.kafka.clientId}-test`,
    brokers: config.kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
}

/** The pipeline's topics of `resources`, made as the daemons make them. */
export async function makePipelineTopics(config: Config, resources: ResourceName[]): Promise<void> {
  const admin = plainKafka(config).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, pipelineTopicSpecs(config, resources), quietLogger);
  } finally {
    await admin.disconnect();
  }
}

/** "topic:partition" → high-water mark, for SinkRunner.caughtUp. */
export async function highWaterMarks(config: Config, topics: string[]): Promise<Map<string, number>> {
  const admin = plainKafka(config).admin();
  await admin.connect();
  try {
    const out = new Map<string, number>();
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic))
        out.set(`${topic}:${p.partition}`, Number(p.high));
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/** partition → committed offset of a group on a topic (-1 when none). */
export async function committedOffsets(
  config: Config,
  groupId: string,
  topic: string,
): Promise<Map<number, number>> {
  const admin = plainKafka(config).admin();
  await admin.connect();
  try {
    const [res] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((res?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

export interface RawMessage {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Every message of a topic written without transactions (offsets without gaps), read up to the
 * high-water marks seen at the start. Faster than readTopics, which must wait for idle fetches.
 */
export async function readAll(config: Config, topic: string, timeoutMs = 60_000): Promise<RawMessage[]> {
  const marks = await highWaterMarks(config, [topic]);
  const pending = new Map(
    [...marks].filter(([, high]) => high > 0).map(([tp, high]) => [Number(tp.slice(topic.length + 1)), high]),
  );
  const out: RawMessage[] = [];
  if (pending.size === 0) return out;
  const consumer = plainKafka(config).consumer({
    groupId: `${config.kafka.clientId}-read-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        const high = pending.get(partition);
        if (high === undefined || offset >= high) return;
        out.push({
          partition,
          offset,
          key: message.key,
          value: message.value,
          headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
        });
        if (offset + 1 >= high) pending.delete(partition);
      },
    });
    await waitFor(`${topic} to be read up to its high-water marks`, () => pending.size === 0, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** The Avro record of a wire-format value, read with the writer schema the test registered. */
export function decodeValue(schema: RegisteredSchema, value: Buffer | null): Record<string, unknown> {
  assert.ok(value && value.readInt32BE(1) === schema.id, 'a value written with the registered schema');
  return schema.type.fromBuffer(value.subarray(5)) as Record<string, unknown>;
}

/** Produces messages (not transactional) and waits for the acks. */
export async function produce(config: Config, topic: string, messages: Message[]): Promise<void> {
  const producer = plainKafka(config).producer({ allowAutoTopicCreation: false, idempotent: true });
  await producer.connect();
  try {
    await producer.send({ topic, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

/** Confluent wire format: magic 0, schema id (int32 BE), Avro binary. */
export function wire(schemaId: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeInt32BE(schemaId, 1);
  return Buffer.concat([head, body]);
}

export function registryUrl(config: Config, path: string): string {
  return `${config.registry.url}${path}`;
}

/** Registers a schema under a subject (ccompat API), returning its id. */
export async function registerSchema(config: Config, subject: string, schema: unknown): Promise<number> {
  const res = await fetch(registryUrl(config, `/subjects/${encodeURIComponent(subject)}/versions`), {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema) }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as { id?: number; message?: string };
  assert.equal(res.status, 200, `register ${subject}: ${res.status} ${JSON.stringify(body)}`);
  return body.id!;
}

export async function setSubjectCompatibility(config: Config, subject: string, level: string): Promise<void> {
  const res = await fetch(registryUrl(config, `/config/${encodeURIComponent(subject)}`), {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: level }),
    signal: AbortSignal.timeout(15_000),
  });
  assert.equal(res.status, 200, `compatibility of ${subject}: ${res.status} ${await res.text()}`);
}

/** Records as the producers would write them (valid for the resource's schema), numbered from `from`. */
export function makeRecords(
  resource: 'batches' | 'audit_logs',
  from: number,
  count: number,
  extra: (n: number) => Record<string, unknown> = () => ({}),
): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, k) => {
    const n = from + k;
    const envelope = {
      _source_endpoint: resource === 'batches' ? 'GET /v2/batches' : 'GET /v1/audit-logs',
      _ib_context: null,
      _fetched_at: 1_767_000_000_000 + n,
      _content_hash: `hash-${n}`,
      _deleted: false,
      _raw_json: JSON.stringify({ n }),
    };
    const fields =
      resource === 'batches'
        ? {
            id: n,
            name: `batch-${n}`,
            workspace: `ws-${n % 5}`,
            mount_point: null,
            repo_owner: 'acme_org',
            batch_owner: null,
            created_at_ms: 1_767_000_000_000 + n * 1000,
            updated_at_ms: 1_767_000_000_000 + n * 2000,
            path_suffix: `batches/${n}`,
          }
        : {
            timestamp_millis: String(1_767_000_000_000 + n),
            timestamp_ms: 1_767_000_000_000 + n,
            email: `user${n % 7}@acme.com`,
            user_ip: '10.0.0.1',
            log_type: 'LOGIN',
          };
    return { ...envelope, ...fields, ...extra(n) };
  });
}

export const batchRecords = (from: number, count: number, extra?: (n: number) => Record<string, unknown>) =>
  makeRecords('batches', from, count, extra);

export interface RegisteredSchema {
  id: number;
  type: avro.Type;
  resource: ResourceName;
  keyId: number;
}

const stringType = avro.Type.forSchema('string');

/**
 * Registers a value schema (the resource's own by default) under `<topic>-value` and the key schema
 * under `<topic>-key`, as the producers do.
 */
export async function registerResource(
  config: Config,
  resource: ResourceName,
  schema: unknown = valueSchema(resource),
  subject = valueSubject(resourceTopic(config, resource)),
): Promise<RegisteredSchema> {
  const id = await registerSchema(config, subject, schema);
  const keyId = await registerSchema(config, keySubject(resourceTopic(config, resource)), 'string');
  return {
    id,
    keyId,
    resource,
    type: avro.Type.forSchema(schema as avro.Schema, avroOptions() as Partial<avro.ForSchemaOptions>),
  };
}

export function encodeMessages(
  schema: RegisteredSchema,
  records: Array<Record<string, unknown>>,
  options: { partition?: number; timestamp?: number } = {},
): Message[] {
  return records.map((r) => ({
    key: wire(schema.keyId, stringType.toBuffer(entityKey(schema.resource, r))),
    value: wire(schema.id, schema.type.toBuffer(r)),
    ...(options.partition === undefined ? {} : { partition: options.partition }),
    ...(options.timestamp === undefined ? {} : { timestamp: String(options.timestamp) }),
  }));
}

/** Waits until a group has committed every partition of the topics up to its high-water mark. */
export async function waitCommitted(
  config: Config,
  groupId: string,
  topics: string[],
  timeoutMs = 120_000,
  alive: () => void = () => undefined,
): Promise<void> {
  await waitFor(
    `group ${groupId} to commit up to the high-water marks`,
    async () => {
      alive();
      const marks = await highWaterMarks(config, topics);
      for (const topic of topics) {
        const committed = await committedOffsets(config, groupId, topic);
        for (const [tp, high] of marks) {
          if (!tp.startsWith(`${topic}:`) || high === 0) continue;
          if (committed.get(Number(tp.slice(topic.length + 1))) !== high) return false;
        }
      }
      return true;
    },
    timeoutMs,
  );
}

/** Drops the database, deletes the prefix's topics and registry subjects; never throws. */
export async function cleanUp(config: Config, extraDatabases: string[] = []): Promise<void> {
  const ch = testClickHouse(config);
  for (const db of [config.clickhouse.database, ...extraDatabases]) {
    await ch.command({ query: `DROP DATABASE IF EXISTS \`${db}\`` }).catch(() => undefined);
  }
  await ch.close().catch(() => undefined);
  const prefix = config.kafka.topicPrefix;
  if (!prefix) return;
  const admin = plainKafka(config).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
  } catch {
    // best effort
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  try {
    const res = await fetch(registryUrl(config, '/subjects'), { signal: AbortSignal.timeout(10_000) });
    const subjects = (await res.json()) as string[];
    for (const s of subjects.filter((x) => x.startsWith(prefix))) {
      await fetch(registryUrl(config, `/subjects/${encodeURIComponent(s)}`), {
        method: 'DELETE',
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
    }
  } catch {
    // best effort
  }
}

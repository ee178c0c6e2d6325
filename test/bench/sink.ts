// `npm run bench -- sink`: how fast the real sink replays a topic into ClickHouse, next to the two
// things that bound it, in one run against the local stack:
//   (a) the sink (startSinks, in this process) replaying the topic from earliest until caught up;
//   (b) the raw ceiling: the same rows inserted straight into an identical table as JSONEachRow;
//   (c) a raw kafkajs read of the topic, no decoding;
//   (d) ClickHouse's own ingest of the same rows from prepared bytes, per format (server-ingest.ts).
// Everything lives under a unique topic prefix and database, removed at the end. A benchmark, not a
// test: it measures and reports, and fails only when the data is wrong (a row count off).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import { request } from 'undici';
import { Progress } from '../../cli/progress.ts';
import { createClickHouse } from '../../core/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import type { Logger } from '../../core/log.ts';
import { registryHeaders } from '../../core/registry.ts';
import {
  ensureTopics,
  keySubject,
  pipelineTopicSpecs,
  resourceTopic,
  valueSubject,
} from '../../core/topics.ts';
import { wireEncode } from '../../producers/record-encoder.ts';
import { avroType } from '../../schemas/index.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { createRowMapper, type Row } from '../../sinks/schema/rows.ts';
import { qualifiedName, quoteIdentifier, quoteString } from '../../sinks/schema/sql.ts';
import { uniqueName } from '../helpers/pipeline.ts';
import { benchConfig, RESOURCE } from './config.ts';
import { fillInChild, readPlacement, type Filled } from './fill.ts';
import { profiled, startProfile } from './profile.ts';
import { measureServerIngest, type ServerFormat, type ServerIngestResult } from './server-ingest.ts';
import { batchRecord } from './records.ts';
import { watchHost, type HostStats } from './host.ts';

/** The sink's consumer fetch settings (sinks/runner.ts), mirrored by the raw read so a/c compares like with like. */
export const SINK_FETCH = { maxBytes: 16 * 1024 * 1024, partitionsConsumedConcurrently: 1 };

export interface SinkBenchOptions {
  records: number;
  partitions: number;
  flushRows: number;
  /** Keep the topics, groups, subjects and database (for looking at them afterwards). */
  keep: boolean;
  /** Write CPU profiles of phases (a) and (b) into this directory. */
  profileDir?: string;
  logger: Logger;
  /** Registered by the caller's signal handler, so that an interrupted run still cleans up. */
  onCleanup: (cleanup: () => Promise<void>) => void;
}

export interface SinkBenchResult {
  bench: 'sink';
  records: number;
  partitions: number;
  flushRows: number;
  clickhouse: string;
  fill: Filled['summary'];
  /** (a) the sink, from startSinks() to caught up (count verified in ClickHouse). */
  sink: {
    seconds: number;
    startupSeconds: number;
    rowsPerSecond: number;
    flushes: number;
    rowsPerFlush: number;
    /** CPU time of this process (user + system, all its threads) during (a), in total and per row. */
    cpuSeconds: number;
    cpuMicrosPerRow: number;
    /** RSS of the bench process, which runs the sink, sampled every 100 ms during (a) only. */
    peakRssMb: number;
    rssAtStartMb: number;
    peakHeapUsedMb: number;
    /** V8 heap reserved, and Buffer memory (Kafka fetches, request bodies), at their peaks. */
    peakHeapTotalMb: number;
    peakArrayBuffersMb: number;
    /** Steal on the machine's CPUs and this process's GC during (a): what a slow run can be blamed on. */
    host: HostStats;
  };
  /**
   * (b) the same rows straight into identical tables, by each insert method; insert time only,
   * building the rows not counted. rowsPerSecond and seconds are the faster method's.
   */
  ceiling: {
    seconds: number;
    rowsPerSecond: number;
    method: InsertMethod;
    methods: Record<InsertMethod, { table: string; seconds: number; rowsPerSecond: number }>;
    inserts: number;
    rowsPerInsert: number;
  };
  /**
   * (d) ClickHouse's own ingest of the sink's rows from prepared bytes (its own output of the sink's
   * table), per format; rowsPerSecond and format are the fastest format's.
   */
  serverIngest: ServerIngestResult;
  /** (c) a kafkajs consumer counting every message, with the sink's fetch settings. */
  kafkaRead: { seconds: number; startupSeconds: number; messagesPerSecond: number };
  /** a/b against the faster insert method (the ceiling), a/c, and a/b against each method. */
  ratios: {
    /** a/d against the server's fastest format, and per format. */
    sinkToServer: number;
    sinkToServerByFormat: Record<ServerFormat, number>;
    sinkToCeiling: number;
    sinkToKafkaRead: number;
    sinkToCeilingByMethod: Record<InsertMethod, number>;
  };
  /** Row counts in ClickHouse, and whether the sink's table and the ceiling's tables hold the same rows. */
  verified: { sinkRows: number; ceilingRows: Record<string, number>; identicalContent: boolean };
}

const profileFile = (o: SinkBenchOptions, phase: string) =>
  o.profileDir ? join(o.profileDir, `${phase}.cpuprofile`) : undefined;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;
const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000;

export async function runSinkBench(options: SinkBenchOptions): Promise<SinkBenchResult> {
  const { records: total, logger } = options;
  const prefix = uniqueName('bench');
  const settings = { partitions: options.partitions, flushRows: options.flushRows };
  const config = benchConfig(prefix, settings);
  const topic = resourceTopic(config, RESOURCE);
  const database = config.clickhouse.database;
  const sinkGroup = `${prefix}-sink`;
  const readGroup = `${prefix}-read`;
  const kafka = createKafka(config, logger, 'bench');
  const admin = kafka.admin();
  const clickhouse = createClickHouse(config);

  const scratch = mkdtempSync(join(tmpdir(), 'ibs-bench-'));
  /** The sink while (a) runs, so that an interrupted run stops it before its database goes. */
  let running: { stop(): Promise<void> } | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await running?.stop().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
    if (options.keep) {
      process.stderr.write(`kept: topics ${prefix}.*, database ${database}, groups ${prefix}-*\n`);
    } else {
      await clickhouse
        .command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(database)}` })
        .catch(() => undefined);
      const topics = (await admin.listTopics().catch(() => [] as string[])).filter((t) =>
        t.startsWith(`${prefix}.`),
      );
      if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.deleteGroups([sinkGroup, readGroup]).catch(() => undefined);
      for (const subject of [valueSubject(topic), keySubject(topic)]) await deleteSubject(config, subject);
    }
    await admin.disconnect().catch(() => undefined);
    await clickhouse.close().catch(() => undefined);
  };
  options.onCleanup(cleanup);

  try {
    await admin.connect();
    const version = await serverVersionText(clickhouse);
    await ensureTopics(admin, pipelineTopicSpecs(config, [RESOURCE]), logger);

    const fill = await fillInChild(prefix, settings, total, join(scratch, 'placement.bin'));

    // (a) the sink.
    const sink = await measureSink(config, admin, logger, topic, sinkGroup, total, {
      profile: profileFile(options, 'sink'),
      onStart: (sinks) => (running = sinks),
    });
    running = undefined;
    const sinkRows = await countRows(clickhouse, qualifiedName(database, RESOURCE));
    if (sinkRows !== total) throw new Error(`the sink wrote ${sinkRows} rows, expected ${total}`);
    await waitForMerges(clickhouse, database);

    // (b) the ceiling.
    const ceiling = await profiled(profileFile(options, 'ceiling'), () =>
      measureCeiling(clickhouse, database, `${RESOURCE}_ceiling`, topic, fill, options.flushRows),
    );
    const sinkSum = await checksum(clickhouse, database, RESOURCE);
    const ceilingRows: Record<string, number> = {};
    let identicalContent = true;
    for (const { table } of Object.values(ceiling.methods)) {
      ceilingRows[table] = await countRows(clickhouse, qualifiedName(database, table));
      if (ceilingRows[table] !== total)
        throw new Error(`${table} holds ${ceilingRows[table]} rows, expected ${total}`);
      identicalContent &&= (await checksum(clickhouse, database, table)) === sinkSum;
    }
    await waitForMerges(clickhouse, database);

    // (d) the server's own ingest of the same rows.
    const serverIngest = await measureServerIngest(
      clickhouse,
      database,
      RESOURCE,
      options.flushRows,
      scratch,
    );
    for (const { table } of Object.values(serverIngest.formats)) {
      const n = await countRows(clickhouse, qualifiedName(database, table));
      if (n !== total) throw new Error(`${table} holds ${n} rows, expected ${total}`);
      identicalContent &&= (await checksum(clickhouse, database, table)) === sinkSum;
    }
    await waitForMerges(clickhouse, database);

    // (c) the raw read.
    const kafkaRead = await measureKafkaRead(config, logger, topic, readGroup, total);

    const a = sink.rowsPerSecond;
    return {
      bench: 'sink',
      records: total,
      partitions: options.partitions,
      flushRows: options.flushRows,
      clickhouse: version,
      fill: fill.summary,
      sink,
      ceiling,
      serverIngest,
      kafkaRead,
      ratios: {
        sinkToServer: round(a / serverIngest.rowsPerSecond),
        sinkToServerByFormat: Object.fromEntries(
          Object.entries(serverIngest.formats).map(([f, v]) => [f, round(a / v.rowsPerSecond)]),
        ) as Record<ServerFormat, number>,
        sinkToCeiling: round(a / ceiling.rowsPerSecond),
        sinkToKafkaRead: round(a / kafkaRead.messagesPerSecond),
        sinkToCeilingByMethod: Object.fromEntries(
          Object.entries(ceiling.methods).map(([m, v]) => [m, round(a / v.rowsPerSecond)]),
        ) as Record<InsertMethod, number>,
      },
      verified: { sinkRows, ceilingRows, identicalContent },
    };
  } finally {
    await cleanup();
  }
}

/** (a): startSinks with a fresh group from earliest, until everything up to the high-water marks is in ClickHouse. */
async function measureSink(
  config: Config,
  admin: Admin,
  logger: Logger,
  topic: string,
  groupId: string,
  total: number,
  hooks: {
    /** Where to write a CPU profile of the replay (start-up to caught up, not the shutdown). */
    profile: string | undefined;
    onStart: (sinks: RunningSinks) => void;
  },
): Promise<SinkBenchResult['sink']> {
  const high = await admin.fetchTopicOffsets(topic);
  const targets = new Map(high.map((p) => [`${topic}:${p.partition}`, Number(p.high)]));
  const rssAtStart = process.memoryUsage().rss;
  let peakRss = rssAtStart;
  let peakHeap = process.memoryUsage().heapUsed;
  let peakHeapTotal = process.memoryUsage().heapTotal;
  let peakBuffers = process.memoryUsage().arrayBuffers;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.heapTotal > peakHeapTotal) peakHeapTotal = m.heapTotal;
    if (m.arrayBuffers > peakBuffers) peakBuffers = m.arrayBuffers;
  }, 100);
  const progress = new Progress(`(a) sink ${topic}`, total);
  const stopProfile = await startProfile(hooks.profile);
  const stopWatching = watchHost();
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  let fatal: Error | undefined;
  const sinks = await startSinks(config, logger, {
    resources: [RESOURCE],
    groupId,
    fromBeginning: true,
    onFatal: (err) => void (fatal = err),
  }).catch(async (err: unknown) => {
    await stopWatching();
    throw err;
  });
  hooks.onStart(sinks);
  const startupSeconds = seconds(started);
  let elapsed: number;
  let cpu: NodeJS.CpuUsage;
  let host: HostStats;
  try {
    for (;;) {
      await sleep(100);
      if (fatal) throw fatal;
      const consumed = [...targets.keys()].reduce((n, tp) => n + (sinks.runner.consumed.get(tp) ?? 0), 0);
      progress.update(Math.min(consumed, total), sinks.runner.stats.rows);
      if (await sinks.runner.caughtUp(targets)) break;
    }
    elapsed = seconds(started);
    cpu = process.cpuUsage(cpuAtStart);
  } finally {
    host = await stopWatching();
    await stopProfile();
    clearInterval(sampler);
    progress.done();
    await sinks.stop();
  }
  const { rows, flushes } = sinks.runner.stats;
  if (rows !== total) throw new Error(`the sink reports ${rows} rows, expected ${total}`);
  return {
    seconds: round(elapsed, 2),
    startupSeconds: round(startupSeconds, 2),
    rowsPerSecond: Math.round(total / elapsed),
    flushes,
    rowsPerFlush: Math.round(rows / Math.max(1, flushes)),
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
    cpuMicrosPerRow: round((cpu.user + cpu.system) / total, 2),
    peakRssMb: mb(peakRss),
    rssAtStartMb: mb(rssAtStart),
    peakHeapUsedMb: mb(peakHeap),
    peakHeapTotalMb: mb(peakHeapTotal),
    peakArrayBuffersMb: mb(peakBuffers),
    host,
  };
}

/** Size of the request body chunks of the streamed insert. */
const STREAM_CHUNK_BYTES = 256 * 1024;

/**
 * INSERT … FORMAT JSONEachRow with the body serialized as it is sent: each row's JSON.stringify line
 * written as UTF-8 into the current chunk, one chunk at a time, so that ClickHouse parses a chunk while
 * the next is serialized. The fastest way found to put rows into ClickHouse from Node.
 */
async function insertStreamed(clickhouse: ClickHouseClient, table: string, rows: Row[]): Promise<void> {
  let next = 0;
  const body = new Readable({
    read() {
      if (next >= rows.length) {
        this.push(null);
        return;
      }
      let chunk = Buffer.allocUnsafe(STREAM_CHUNK_BYTES);
      let used = 0;
      while (next < rows.length) {
        const line = JSON.stringify(rows[next]);
        // UTF-8 takes at most 3 bytes per UTF-16 unit, so the line fits where it is written.
        if (used + line.length * 3 + 1 > chunk.length) {
          if (used > 0) break;
          chunk = Buffer.allocUnsafe(line.length * 3 + 1);
        }
        used += chunk.write(line, used);
        chunk[used++] = 0x0a;
        next += 1;
      }
      this.push(chunk.subarray(0, used));
    },
  });
  const result = await clickhouse.exec({ query: `INSERT INTO ${table} FORMAT JSONEachRow`, values: body });
  await finished(result.stream.resume());
}

/** The two ways of inserting a batch of rows that (b) measures; the faster one is the ceiling. */
const INSERT_METHODS = {
  /** The client's plain path: insert({ values: rows, format: 'JSONEachRow' }). */
  array: (clickhouse: ClickHouseClient, table: string, rows: Row[]) =>
    clickhouse.insert({ table, values: rows, format: 'JSONEachRow' }).then(() => undefined),
  /** JSONEachRow lines streamed as they are serialized (insertStreamed). */
  streamed: insertStreamed,
} as const;
export type InsertMethod = keyof typeof INSERT_METHODS;

/**
 * (b): the rows the sink wrote, rebuilt record by record exactly as it builds them (wire-encoded,
 * decoded with the same avsc type, mapped by the same row mapper with the same Kafka coordinates), in
 * batches of flushRows. Each batch goes into two identical tables, once per insert method (alternating
 * which goes first); only the inserts are timed. The ceiling is the faster method, so that the sink is
 * never measured against a slower insert than the one it uses itself.
 */
async function measureCeiling(
  clickhouse: ClickHouseClient,
  database: string,
  tablePrefix: string,
  topic: string,
  fill: Filled,
  batchRows: number,
): Promise<SinkBenchResult['ceiling']> {
  const type = avroType(RESOURCE);
  const methods = Object.keys(INSERT_METHODS) as InsertMethod[];
  const targets = [];
  for (const method of methods) {
    const layout = deriveLayout(RESOURCE, type, { database, table: `${tablePrefix}_${method}` });
    await applySchema(clickhouse, layout);
    const mapper = createRowMapper(layout);
    targets.push({ method, mapper, tables: mapper.tables.map((t) => qualifiedName(database, t)), ms: 0 });
  }
  const mapper = targets[0]!.mapper;
  const { partitionOf, offsetOf } = readPlacement(fill.placementFile);
  const total = partitionOf.length;
  const progress = new Progress(`(b) ceiling ${database}.${tablePrefix}_*`, total);
  let batches = 0;
  try {
    for (let from = 0; from < total; from += batchRows) {
      const to = Math.min(total, from + batchRows);
      const out: Row[][] = mapper.buffers();
      const ingestedAt = Math.floor(Date.now() / 1000);
      for (let i = from; i < to; i++) {
        const value = wireEncode(fill.valueId, type, batchRecord(i));
        const record = type.fromBuffer(value.subarray(5)) as Record<string, unknown>;
        const position = {
          topic,
          partition: partitionOf[i] as number,
          offset: offsetOf[i] as number,
        };
        mapper.map(record, position, ingestedAt, out);
      }
      const order = batches % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        for (let t = 0; t < target.tables.length; t++) {
          const rows = out[t] as Row[];
          if (rows.length === 0) continue;
          const started = performance.now();
          await INSERT_METHODS[target.method](clickhouse, target.tables[t] as string, rows);
          target.ms += performance.now() - started;
        }
      }
      batches += 1;
      progress.update(to, to);
    }
  } finally {
    progress.done();
  }
  const byMethod = Object.fromEntries(
    targets.map((t) => [
      t.method,
      {
        table: `${tablePrefix}_${t.method}`,
        seconds: round(t.ms / 1000, 2),
        rowsPerSecond: Math.round(total / (t.ms / 1000)),
      },
    ]),
  ) as Record<InsertMethod, { table: string; seconds: number; rowsPerSecond: number }>;
  const best = methods.reduce((a, b) => (byMethod[b].rowsPerSecond > byMethod[a].rowsPerSecond ? b : a));
  return {
    rowsPerSecond: byMethod[best].rowsPerSecond,
    seconds: byMethod[best].seconds,
    method: best,
    methods: byMethod,
    inserts: batches,
    rowsPerInsert: Math.round(total / Math.max(1, batches)),
  };
}

/** (c): a fresh group reads the whole topic and counts the messages; nothing is decoded. */
async function measureKafkaRead(
  config: Config,
  logger: Logger,
  topic: string,
  groupId: string,
  total: number,
): Promise<SinkBenchResult['kafkaRead']> {
  const consumer = createKafka(config, logger, 'bench-read').consumer({
    groupId,
    allowAutoTopicCreation: false,
    readUncommitted: false,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    maxBytes: SINK_FETCH.maxBytes,
  });
  const progress = new Progress(`(c) kafkajs read ${topic}`, total);
  let count = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const started = performance.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: SINK_FETCH.partitionsConsumedConcurrently,
      eachBatch: async ({ batch }) => {
        count += batch.messages.length;
        if (count >= total) finish();
      },
    });
    const startupSeconds = seconds(started);
    const ticker = setInterval(() => progress.update(count, count), 200);
    await finished;
    const elapsed = seconds(started);
    clearInterval(ticker);
    return {
      seconds: round(elapsed, 2),
      startupSeconds: round(startupSeconds, 2),
      messagesPerSecond: Math.round(total / elapsed),
    };
  } finally {
    progress.done();
    await consumer.disconnect();
  }
}

async function serverVersionText(clickhouse: ClickHouseClient): Promise<string> {
  const rs = await clickhouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
  return ((await rs.json<{ v: string }>())[0]?.v ?? 'unknown').toString();
}

async function countRows(clickhouse: ClickHouseClient, table: string): Promise<number> {
  const rs = await clickhouse.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: string | number }>())[0]?.n ?? -1);
}

/** An order-independent hash of every row over every stored column except _ingested_at. */
async function checksum(clickhouse: ClickHouseClient, database: string, table: string): Promise<string> {
  const rs = await clickhouse.query({
    query:
      `SELECT name FROM system.columns WHERE database = ${quoteString(database)} ` +
      `AND table = ${quoteString(table)} AND default_kind != 'ALIAS' AND name != '_ingested_at'`,
    format: 'JSONEachRow',
  });
  const columns = (await rs.json<{ name: string }>()).map((c) => c.name);
  const hashed = columns.map((c) => `ifNull(toString(${quoteIdentifier(c)}), '\\N')`).join(', ');
  const sum = await clickhouse.query({
    query: `SELECT count() AS n, sum(cityHash64(${hashed})) AS h FROM ${qualifiedName(database, table)}`,
    format: 'JSONEachRow',
  });
  const row = (await sum.json<{ n: string; h: string }>())[0];
  return `${row?.n}:${row?.h}`;
}

/** Background merges of one phase would otherwise eat into the next phase's CPU on a small machine. */
async function waitForMerges(clickhouse: ClickHouseClient, database: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const rs = await clickhouse.query({
      query: `SELECT count() AS n FROM system.merges WHERE database = ${quoteString(database)}`,
      format: 'JSONEachRow',
    });
    if (Number((await rs.json<{ n: string }>())[0]?.n ?? 0) === 0) return;
    await sleep(500);
  }
}

async function deleteSubject(config: Config, subject: string): Promise<void> {
  const url = `${config.registry.url}/subjects/${encodeURIComponent(subject)}`;
  for (const suffix of ['', '?permanent=true']) {
    await request(`${url}${suffix}`, { method: 'DELETE', headers: registryHeaders(config) })
      .then((r) => r.body.dump())
      .catch(() => undefined);
  }
}

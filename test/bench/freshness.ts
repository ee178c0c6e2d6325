// `npm run bench -- freshness`: how long after an entity appears in the API its row is in
// `<resource>_current`. The simulator runs live on the real clock (virtual time = wall time, ticking
// every 100 ms) and grows batches and audit entries at a steady rate; producers and sinks run in this
// process with their default settings but the poll interval under test. Every 100 ms the bench reads
// the current views and stamps each new key with the time it was first seen; freshness is that time
// minus the entity's own creation time in the API (created_at_ms, timestamp_ms). Reported per poll
// interval and resource: p50, p99 and max over at least `changes` new entities.
import { performance } from 'node:perf_hooks';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../core/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import type { Logger } from '../../core/log.ts';
import type { ResourceName } from '../../core/resources.ts';
import { startProducers } from '../../producers/daemon.ts';
import { startSimulator } from '../../sim/index.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { qualifiedName, quoteIdentifier, quoteString } from '../../sinks/schema/sql.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';

/** What is measured: the resource, its key, and the API's own time of the entity's appearance. */
const MEASURED: Array<{ resource: ResourceName; key: string; createdAt: string; perMin: number }> = [
  { resource: 'batches', key: 'id', createdAt: 'created_at_ms', perMin: 300 },
  { resource: 'audit_logs', key: '_content_hash', createdAt: 'timestamp_ms', perMin: 300 },
];

export interface FreshnessOptions {
  /** Poll intervals to measure, in ms (the config's default and 1 s unless given). */
  intervals: number[];
  /** New entities to observe per resource before a phase ends. */
  changes: number;
  logger: Logger;
  onCleanup: (cleanup: () => Promise<void>) => void;
}

export interface FreshnessPhase {
  pollIntervalMs: number;
  sinkFlushMs: number;
  resources: Record<
    string,
    { changes: number; p50Ms: number; p99Ms: number; maxMs: number; goalMet: boolean }
  >;
  seconds: number;
}

export interface FreshnessResult {
  bench: 'freshness';
  /** p99 ≤ poll interval + 2 s. */
  goal: string;
  phases: FreshnessPhase[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

/** Epoch ms of a timestamp column, whatever type the server's DDL gave it (Int64 ms or DateTime64). */
async function millisExpression(ch: ClickHouseClient, database: string, table: string, column: string) {
  const rs = await ch.query({
    query: `SELECT type FROM system.columns WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND name = ${quoteString(column)}`,
    format: 'JSONEachRow',
  });
  const type = (await rs.json<{ type: string }>())[0]?.type ?? 'Int64';
  const col = quoteIdentifier(column);
  return /DateTime64/.test(type) ? `toUnixTimestamp64Milli(${col})` : `toInt64(${col})`;
}

async function measurePhase(pollIntervalMs: number, o: FreshnessOptions): Promise<FreshnessPhase> {
  const prefix = uniqueName('fresh');
  const sim = await startSimulator({
    port: 0,
    startTime: Date.now(),
    tickMs: 100,
    speed: 1,
    scale: { batches: 20, runs: 2, conversations: 1, queries: 1, files: 1, auditLogs: 20 },
    growth: { batchesPerMin: MEASURED[0]!.perMin, runsPerMin: 0, auditPerMin: MEASURED[1]!.perMin },
  });
  const config: Config = testConfig(prefix, {
    instabase: { apiUrl: sim.url, token: sim.token },
    producers: {
      resources: MEASURED.map((m) => m.resource),
      defaultIntervalMs: pollIntervalMs,
      initialLookbackMs: 3_600_000,
    },
    sinks: { resources: MEASURED.map((m) => m.resource) },
  });
  const database = config.clickhouse.database;
  const ch = createClickHouse(config);
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await producers?.stop().catch(() => undefined);
    await sinks?.stop().catch(() => undefined);
    await sim.close().catch(() => undefined);
    await ch
      .command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(database)}` })
      .catch(() => undefined);
    const admin = createKafka(config, o.logger, 'bench-clean').admin();
    await admin.connect().catch(() => undefined);
    const topics = (await admin.listTopics().catch(() => [] as string[])).filter((t) =>
      t.startsWith(`${prefix}.`),
    );
    if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await ch.close().catch(() => undefined);
  };
  o.onCleanup(cleanup);
  let producers: Awaited<ReturnType<typeof startProducers>> | undefined;
  let sinks: Awaited<ReturnType<typeof startSinks>> | undefined;
  try {
    sinks = await startSinks(config, o.logger, { fromBeginning: true });
    producers = await startProducers(config, o.logger);
    const started = performance.now();
    const since = Date.now();
    const firstSeen = MEASURED.map(() => new Map<string, number>());
    const latencies = MEASURED.map(() => [] as number[]);
    const queries: Array<string | undefined> = MEASURED.map(() => undefined);
    const currentQuery = async (m: (typeof MEASURED)[number]) => {
      // The tables exist once the first record of the resource has been sunk.
      const t = await millisExpression(ch, database, m.resource, m.createdAt).catch(() => undefined);
      const view = qualifiedName(database, `${m.resource}_current`);
      return (
        t && `SELECT toString(${quoteIdentifier(m.key)}) AS k, ${t} AS t FROM ${view} WHERE ${t} >= ${since}`
      );
    };
    const deadline = Date.now() + Math.max(120_000, (o.changes / 5) * 1_000 * 2 + pollIntervalMs * 3);
    let lastLine = 0;
    while (Date.now() < deadline && latencies.some((l) => l.length < o.changes)) {
      await sleep(100);
      for (const [i, m] of MEASURED.entries()) {
        queries[i] ??= await currentQuery(m);
        if (!queries[i]) continue;
        const rs = await ch.query({ query: queries[i]!, format: 'JSONEachRow' }).catch(() => undefined);
        if (!rs) continue;
        const now = Date.now();
        for (const row of await rs.json<{ k: string; t: string | number }>()) {
          if (firstSeen[i]!.has(row.k)) continue;
          firstSeen[i]!.set(row.k, now);
          latencies[i]!.push(now - Number(row.t));
        }
      }
      const line = `freshness at poll ${pollIntervalMs} ms: ${MEASURED.map((m, i) => `${m.resource} ${latencies[i]!.length}/${o.changes}`).join(', ')}`;
      if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
      else if (Date.now() - lastLine >= 5_000) {
        lastLine = Date.now();
        process.stderr.write(`${line}\n`);
      }
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    const resources: FreshnessPhase['resources'] = {};
    for (const [i, m] of MEASURED.entries()) {
      const sorted = [...latencies[i]!].sort((a, b) => a - b);
      const p99 = quantile(sorted, 0.99);
      resources[m.resource] = {
        changes: sorted.length,
        p50Ms: quantile(sorted, 0.5),
        p99Ms: p99,
        maxMs: sorted.at(-1) ?? NaN,
        goalMet: sorted.length >= o.changes && p99 <= pollIntervalMs + 2_000,
      };
    }
    return {
      pollIntervalMs,
      sinkFlushMs: config.sinks.flushMs,
      resources,
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    await cleanup();
  }
}

export async function runFreshnessBench(o: FreshnessOptions): Promise<FreshnessResult> {
  const phases: FreshnessPhase[] = [];
  for (const interval of o.intervals) phases.push(await measurePhase(interval, o));
  return { bench: 'freshness', goal: 'p99 <= poll interval + 2 s', phases };
}

export function freshnessTable(r: FreshnessResult): string {
  const lines = [`freshness: API appearance → row in <resource>_current (goal ${r.goal})`];
  for (const p of r.phases) {
    lines.push(`  poll every ${p.pollIntervalMs} ms, sink flushMs ${p.sinkFlushMs} (${p.seconds} s):`);
    for (const [resource, v] of Object.entries(p.resources)) {
      lines.push(
        `    ${resource.padEnd(12)} ${String(v.changes).padStart(5)} changes  p50 ${(v.p50Ms / 1000).toFixed(2)} s  ` +
          `p99 ${(v.p99Ms / 1000).toFixed(2)} s  max ${(v.maxMs / 1000).toFixed(2)} s  goal ${v.goalMet ? 'met' : 'not met'}`,
      );
    }
  }
  return lines.join('\n');
}

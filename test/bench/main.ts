// Benchmarks against the local stack (npm run stack -- up). Usage:
//   npm run bench -- sink [--records N] [--flush-rows N] [--partitions N] [--json] [--keep] [--profile DIR]
//   npm run bench -- top FILE.cpuprofile [--limit N]
// --json prints only the JSON result on stdout (npm adds its own banner there: use `npm run -s bench`
// to pipe it); otherwise a table, then the JSON. Progress goes to stderr (a bar on a TTY).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../core/log.ts';
import { profileSummary } from './profile.ts';
import { testConfig } from '../helpers/pipeline.ts';
import { freshnessTable, runFreshnessBench } from './freshness.ts';
import { producersTable, runProducersBench } from './producers.ts';
import { sinkTable } from './report.ts';
import { runSinkBench } from './sink.ts';
import { runWalkKeysBench, walkKeysTable } from './walk-keys.ts';

const USAGE = `usage: npm run bench -- sink [--records N] [--flush-rows N] [--partitions N] [--json] [--keep]
                                [--profile DIR]
       npm run bench -- freshness [--changes N] [--intervals MS,MS] [--json]
       npm run bench -- producers [--audit-logs N] [--batches N] [--runs N] [--concurrency N]
                                [--batch-files-page-size N] [--batch-spacing-ms N] [--walk-keys-in-memory N]
                                [--node-options="FLAGS"] [--tsx] [--json]
       npm run bench -- walk-keys [--keys N] [--limits N,N] [--node-options="FLAGS"] [--json]
       npm run bench -- top FILE.cpuprofile [--limit N]

  sink          fill a topic with N batches records, then measure (a) the sink replaying it into
                ClickHouse, (b) the same rows inserted straight as JSONEachRow, (c) a raw kafkajs read
  --records     records to produce (default 1000000; e.g. 200000 for a quick run)
  --flush-rows  the sink's flushRows and the ceiling's insert size (default 25000: as fast as
                50000-100000 on a 2-core machine, and the sink holds up to two full buffers)
  --partitions  partitions of the topic (default 3)
  --json        print only the JSON result (with npm, run -s to drop npm's banner from stdout)
  --keep        keep the topics, groups, subjects and database instead of removing them
  --profile     write CPU profiles of phases (a) and (b) to DIR/sink.cpuprofile and
                DIR/ceiling.cpuprofile and print their top functions by self time (stderr)
  producers     backfill the simulator's backlog (a) into Kafka and (b) with publishing replaced by
                counting; records/s, CPU per record, peak RSS, a/b
  --audit-logs, --batches, --runs  the backlog (default 300000, 20000, 2000: 20000 run results)
  --concurrency the client's and the scheduler's concurrency (default 8)
  --batch-files-page-size  producers.batchFilesPageSize (default 100)
  --batch-spacing-ms  time between two batches (default: a minute, closer past two days of them); a third
                of batches gain a file every 5-60 minutes, so close batches have few files
  --walk-keys-in-memory  producers.walkKeysInMemory (default: the configuration's)
  --node-options="..."  node flags of the two phases' processes (each phase runs in one of its own), e.g.
                "--max-old-space-size=128 --max-semi-space-size=2" as the compose file gives
  --tsx         run the phases from the sources through tsx instead of from the build (dist/, what
                npm run producers and the Docker image run), which the bench makes first
  freshness     the simulator live on the real clock, producers and sinks in-process: time from an
                entity's appearance in the API to its row in <resource>_current, p50/p99 per resource
  --changes     new entities to observe per resource and interval (default 200)
  --intervals   poll intervals in ms (default: the config's default interval, then 1000)
  walk-keys     what a walk's seen keys cost (peak RSS, heap, CPU per key): a plain Set against
                producers.walkKeysInMemory limits, each in a process of its own; no stack needed
  --keys        keys walked (default 1000000)
  --limits      walkKeysInMemory values to measure (default: the configuration's, and 2000)
  top           functions and packages by self time in a .cpuprofile (also node --cpu-prof's)`;

/**
 * The sink's flushRows: throughput is flat from 25k to 100k rows per insert here (~87-90k rows/s for
 * 1M records), while memory grows with it (the sink writes one full buffer while filling the next):
 * peak RSS ~290 MB at 25k, ~330 MB at 50k, ~400 MB at 100k.
 */
const DEFAULT_FLUSH_ROWS = 25_000;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} takes a positive integer, not "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      records: { type: 'string' },
      'flush-rows': { type: 'string' },
      partitions: { type: 'string' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      profile: { type: 'string' },
      limit: { type: 'string' },
      changes: { type: 'string' },
      'audit-logs': { type: 'string' },
      batches: { type: 'string' },
      runs: { type: 'string' },
      concurrency: { type: 'string' },
      'batch-files-page-size': { type: 'string' },
      'batch-spacing-ms': { type: 'string' },
      'walk-keys-in-memory': { type: 'string' },
      'node-options': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      intervals: { type: 'string' },
      keys: { type: 'string' },
      limits: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (positionals[0] === 'top' && positionals.length === 2) {
    process.stdout.write(`${profileSummary(positionals[1]!, positive('limit', values.limit, 25))}\n`);
    return;
  }
  const bench = positionals[0];
  if (
    values.help ||
    positionals.length !== 1 ||
    !['sink', 'freshness', 'producers', 'walk-keys'].includes(bench ?? '')
  ) {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (values.profile) mkdirSync(values.profile, { recursive: true });
  const logger = createLogger('bench', undefined, process.env.LOG_LEVEL ?? 'error');
  let cleanup: (() => Promise<void>) | undefined;
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  if (bench === 'producers') {
    const r = await runProducersBench({
      auditLogs: positive('audit-logs', values['audit-logs'], 300_000),
      batches: positive('batches', values.batches, 20_000),
      runs: positive('runs', values.runs, 2_000),
      concurrency: positive('concurrency', values.concurrency, 8),
      batchFilesPageSize: positive('batch-files-page-size', values['batch-files-page-size'], 100),
      ...(values['batch-spacing-ms']
        ? { batchSpacingMs: positive('batch-spacing-ms', values['batch-spacing-ms'], 0) }
        : {}),
      ...(values['walk-keys-in-memory']
        ? { walkKeysInMemory: positive('walk-keys-in-memory', values['walk-keys-in-memory'], 0) }
        : {}),
      nodeOptions: (values['node-options'] ?? '').split(/\s+/).filter(Boolean),
      runtime: values.tsx ? 'tsx' : 'build',
      logger,
      onCleanup: (fn) => (cleanup = fn),
    });
    const json = JSON.stringify(r, null, 2);
    process.stdout.write(values.json ? `${json}\n` : `${producersTable(r)}\n\n${json}\n`);
    return;
  }

  if (bench === 'walk-keys') {
    const r = await runWalkKeysBench(
      positive('keys', values.keys, 1_000_000),
      (values.limits ?? `${testConfig('defaults').producers.walkKeysInMemory},2000`)
        .split(',')
        .map((v) => positive('limits', v, 1)),
      (values['node-options'] ?? '').split(/\s+/).filter(Boolean),
    );
    const json = JSON.stringify(r, null, 2);
    process.stdout.write(values.json ? `${json}\n` : `${walkKeysTable(r)}\n\n${json}\n`);
    return;
  }

  if (bench === 'freshness') {
    const intervals = values.intervals
      ? values.intervals.split(',').map((v) => positive('intervals', v, 1_000))
      : [testConfig('defaults').producers.defaultIntervalMs, 1_000];
    const fresh = await runFreshnessBench({
      intervals,
      changes: positive('changes', values.changes, 200),
      logger,
      onCleanup: (fn) => (cleanup = fn),
    });
    const json = JSON.stringify(fresh, null, 2);
    process.stdout.write(values.json ? `${json}\n` : `${freshnessTable(fresh)}\n\n${json}\n`);
    return;
  }

  const result = await runSinkBench({
    records: positive('records', values.records, 1_000_000),
    flushRows: positive('flush-rows', values['flush-rows'], DEFAULT_FLUSH_ROWS),
    partitions: positive('partitions', values.partitions, 3),
    keep: values.keep,
    ...(values.profile ? { profileDir: values.profile } : {}),
    logger,
    onCleanup: (fn) => (cleanup = fn),
  });
  if (values.profile) {
    for (const phase of ['sink', 'ceiling']) {
      process.stderr.write(`\n${profileSummary(join(values.profile, `${phase}.cpuprofile`), 25)}\n`);
    }
  }
  const json = JSON.stringify(result, null, 2);
  process.stdout.write(values.json ? `${json}\n` : `${sinkTable(result)}\n\n${json}\n`);
}

main().then(
  // Clients that linger (kafkajs timers, keep-alive sockets) must not hold the process open.
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);

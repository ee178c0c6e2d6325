// `npm run bench -- producers`: how fast the producers backfill, next to what bounds them, in one run:
//   (a) startProducers walking the simulator's backlog into Kafka: Avro, transactions, cursor state;
//   (b) the same walk by the same code, with publishing replaced by counting (the Publisher seam of
//       startProducers): HTTP, validation, shaping and Avro encoding, no Kafka. a/b is what Kafka costs.
// The simulator's clock is frozen, so both phases walk exactly the same data; there is no rate limit.
// The simulator runs in a child process (./sim-child.ts): CPU time and RSS are the producers' own.
// Each phase ends when every job has finished its first poll. A benchmark, not a test: it fails only
// when the two phases did not publish the same number of records per resource.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Config } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import type { Logger } from '../../core/log.ts';
import { startProducers } from '../../producers/daemon.ts';
import { TransactionalPublisher, type Publisher, type PublishUnit } from '../../producers/publisher.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';

export interface ProducersBenchOptions {
  auditLogs: number;
  batches: number;
  runs: number;
  concurrency: number;
  batchFilesPageSize: number;
  logger: Logger;
  onCleanup: (cleanup: () => Promise<void>) => void;
}

interface Phase {
  seconds: number;
  records: number;
  recordsPerSecond: number;
  /** CPU time of this process (the producers; the simulator runs in a child) per record published. */
  cpuMicrosPerRecord: number;
  peakRssMb: number;
  /**
   * Heap in use after a full garbage collection at the end of the phase, the producers still running:
   * what stays live (code, libraries, state held in memory), without the garbage V8 lets pile up.
   */
  liveHeapMb: number;
  perResource: Record<string, number>;
}

export interface ProducersBenchResult {
  bench: 'producers';
  scale: { auditLogs: number; batches: number; runs: number; runResults: number };
  concurrency: number;
  batchFilesPageSize: number;
  kafka: Phase;
  ceiling: Phase;
  ratios: { kafkaToCeiling: number };
}

/** The simulator as ./sim-child.ts runs it: where it listens, and its frozen virtual time. */
interface ChildSimulator {
  url: string;
  token: string;
  now: number;
  close(): Promise<void>;
}

type SimReply = { ok: true; url: string; token: string; now: number } | { ok: false; error: string };

/** execArgv without profiler flags, including the value of a flag given as `--cpu-prof-dir DIR`. */
function withoutProfiler(execArgv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (!/^--(cpu-prof|prof|heap-prof)/.test(a)) out.push(a);
    else if (/^--(cpu-prof|heap-prof)-(dir|name|interval)$/.test(a)) i++;
  }
  return out;
}

function simulatorInChild(args: number[]): Promise<ChildSimulator> {
  const child = fork(
    fileURLToPath(new URL('./sim-child.ts', import.meta.url)),
    args.map(String),
    // The loader (tsx) comes along; a profiler flag given to the bench does not: the profile is the
    // producers'.
    { execArgv: withoutProfiler(process.execArgv) },
  );
  // An interrupted bench exits without closing it: the child goes with it.
  const killChild = () => child.kill();
  process.once('exit', killChild);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    process.off('exit', killChild);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.once('message', (m) => {
      const reply = m as SimReply;
      if (reply.ok) resolve({ url: reply.url, token: reply.token, now: reply.now, close });
      else reject(new Error(`the simulator did not start: ${reply.error}`));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the simulator exited (${code}) before it listened`)));
  });
}

/** A full garbage collection, without starting the bench with --expose-gc. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;

/**
 * Counts what it is handed and makes it "durable" at once, so the walk goes on exactly as with Kafka.
 * Only the state store's start-up marker (it reads the state topic up to a marker it wrote itself) goes
 * to Kafka for real, through a transactional publisher of its own.
 */
class CountingPublisher implements Publisher {
  messages = 0;
  private readonly real: TransactionalPublisher;
  constructor(config: Config, logger: Logger) {
    this.real = new TransactionalPublisher(
      createKafka(config, logger, 'bench-marker'),
      `${config.kafka.clientId}-bench-marker`,
      logger,
    );
  }
  start(): Promise<void> {
    return this.real.start();
  }
  async publish(unit: PublishUnit): Promise<void> {
    const markerOnly = unit.messages.every((t) =>
      t.messages.every((m) => String(m.key ?? '').startsWith('__marker__/')),
    );
    if (markerOnly) return this.real.publish(unit);
    for (const t of unit.messages) this.messages += t.messages.length;
    unit.onCommitted?.();
  }
  close(): Promise<void> {
    return this.real.close();
  }
}

async function walk(
  sim: ChildSimulator,
  config: Config,
  o: ProducersBenchOptions,
  label: string,
  publisher?: Publisher,
): Promise<Phase> {
  const rssAtStart = process.memoryUsage().rss;
  let peakRss = rssAtStart;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const producers = await startProducers(config, o.logger, {
    now: () => sim.now,
    ...(publisher ? { publisher } : {}),
  });
  let lastLine = 0;
  try {
    for (;;) {
      await sleep(100);
      const statuses = [...producers.scheduler.status.values()];
      const done = statuses.every((s) => s.polls >= 1 && !s.running);
      const records = [...producers.published.values()].reduce((a, b) => a + b, 0);
      if (Date.now() - lastLine > (process.stderr.isTTY ? 200 : 5_000)) {
        lastLine = Date.now();
        const line = `(${label}) ${records} records, ${Math.round(records / ((performance.now() - started) / 1000))}/s`;
        process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
      }
      if (done) break;
      const failed = statuses.find((s) => s.lastError !== undefined);
      if (failed) {
        // Stopped, so that its units remove their local state copies.
        await producers.stop().catch(() => undefined);
        throw new Error(`a poll failed: ${String(failed.lastError)}`);
      }
    }
  } finally {
    clearInterval(sampler);
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  fullGc();
  const liveHeap = process.memoryUsage().heapUsed;
  await producers.stop();
  const perResource = Object.fromEntries(producers.published);
  const records = Object.values(perResource).reduce((a, b) => a + b, 0);
  return {
    seconds: Math.round(seconds * 100) / 100,
    records,
    recordsPerSecond: Math.round(records / seconds),
    cpuMicrosPerRecord: Math.round(((cpu.user + cpu.system) / Math.max(1, records)) * 10) / 10,
    peakRssMb: mb(peakRss),
    liveHeapMb: mb(liveHeap),
    perResource,
  };
}

export async function runProducersBench(o: ProducersBenchOptions): Promise<ProducersBenchResult> {
  const filesPerRun = 5;
  const docsPerFile = 2;
  // Frozen clock: both phases see the same backlog. Runs spread over the last 20 hours, audit entries
  // one a second, so the default 7-day first lookback covers 300,000 of them (3.5 days). Batches are a
  // minute apart, or closer when there are more than two days of them: a third of batches gain a file
  // every 5-60 minutes, so at a minute apart 20,000 batches would reach back 14 days and hold millions
  // of files, the oldest more than the paging guard lets a first walk take.
  const batchSpacingMs = Math.min(60_000, Math.floor((48 * 3_600_000) / o.batches));
  const sim = await simulatorInChild([
    o.auditLogs,
    o.batches,
    o.runs,
    filesPerRun,
    docsPerFile,
    batchSpacingMs,
  ]);
  const prefixes: string[] = [];
  const configFor = () => {
    const prefix = uniqueName('pbench');
    prefixes.push(prefix);
    return testConfig(prefix, {
      instabase: { apiUrl: sim.url, token: sim.token, rps: 0, concurrency: o.concurrency },
      producers: {
        concurrency: o.concurrency,
        initialLookbackMs: 30 * 24 * 3_600_000,
        batchFilesPageSize: o.batchFilesPageSize,
      },
    });
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await sim.close().catch(() => undefined);
    for (const prefix of prefixes) {
      const admin = createKafka(testConfig(prefix), o.logger, 'bench-clean').admin();
      await admin.connect().catch(() => undefined);
      const topics = (await admin.listTopics().catch(() => [] as string[])).filter((t) =>
        t.startsWith(`${prefix}.`),
      );
      if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  };
  o.onCleanup(cleanup);
  try {
    const kafka = await walk(sim, configFor(), o, 'a: into Kafka');
    const countingConfig = configFor();
    const ceiling = await walk(
      sim,
      countingConfig,
      o,
      'b: counting',
      new CountingPublisher(countingConfig, o.logger),
    );
    for (const [resource, n] of Object.entries(kafka.perResource)) {
      if (ceiling.perResource[resource] !== n)
        throw new Error(`${resource}: ${n} records into Kafka but ${ceiling.perResource[resource]} counted`);
    }
    return {
      bench: 'producers',
      scale: {
        auditLogs: o.auditLogs,
        batches: o.batches,
        runs: o.runs,
        runResults: o.runs * filesPerRun * docsPerFile,
      },
      concurrency: o.concurrency,
      batchFilesPageSize: o.batchFilesPageSize,
      kafka,
      ceiling,
      ratios: {
        kafkaToCeiling: Math.round((kafka.recordsPerSecond / ceiling.recordsPerSecond) * 1000) / 1000,
      },
    };
  } finally {
    await cleanup();
  }
}

export function producersTable(r: ProducersBenchResult): string {
  const row = (name: string, p: Phase) =>
    `  ${name.padEnd(26)} ${String(p.recordsPerSecond).padStart(8)} rec/s  ${p.seconds.toFixed(1).padStart(6)} s  ` +
    `${p.cpuMicrosPerRecord} µs CPU/record  peak RSS ${p.peakRssMb} MB  live heap ${p.liveHeapMb} MB`;
  return [
    `producers benchmark: ${r.scale.auditLogs} audit entries, ${r.scale.batches} batches, ${r.scale.runs} runs ` +
      `(${r.scale.runResults} results), concurrency ${r.concurrency}, no rate limit`,
    row('(a) into Kafka', r.kafka),
    row('(b) counting (no Kafka)', r.ceiling),
    `  a/b = ${r.ratios.kafkaToCeiling} (goal ≥ 0.7: ${r.ratios.kafkaToCeiling >= 0.7 ? 'met' : 'not met'}); ` +
      `RSS goal ≤ 150 MB: ${r.kafka.peakRssMb <= 150 ? 'met' : 'not met'} (the simulator runs in a child)`,
  ].join('\n');
}

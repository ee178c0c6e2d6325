// `npm run bench -- producers`: how fast the producers backfill, next to what bounds them, in one run:
//   (a) startProducers walking the simulator's backlog into Kafka: Avro, transactions, cursor state;
//   (b) the same walk by the same code, with publishing replaced by counting (the Publisher seam of
//       startProducers): HTTP, validation, shaping and Avro encoding, no Kafka. a/b is what Kafka costs.
// The simulator's clock is frozen, so both phases walk exactly the same data; there is no rate limit.
// The simulator runs in a child process (./sim-child.ts), and each phase in one of its own
// (./producers-child.ts): CPU time and RSS are the producers' own. The phases run the build (dist/, as
// `npm run producers` and the Docker image do, with plain node), or with --tsx the sources through tsx.
// Each phase ends when every job has finished its first poll. A benchmark, not a test: it fails only
// when the two phases did not publish the same number of records per resource.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import type { Logger } from '../../core/log.ts';
import { isSinkNodeFlag } from '../../core/node-flags.ts';
import { build, builtModule } from '../helpers/built.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';
import type { Phase, PhaseReply, PhaseRequest } from './producers-child.ts';

export interface ProducersBenchOptions {
  auditLogs: number;
  batches: number;
  runs: number;
  concurrency: number;
  batchFilesPageSize: number;
  /** The simulator's time between two batches; unset: a minute, or closer to fit two days (below). */
  batchSpacingMs?: number;
  /** producers.walkKeysInMemory; unset: the configuration's default. */
  walkKeysInMemory?: number;
  /** Node flags of the phases' processes, e.g. V8's heap limits as a deployment would set them. */
  nodeOptions: string[];
  /** What the phases' processes run: the build with plain node, or the sources through tsx. */
  runtime: PhaseRuntime;
  logger: Logger;
  onCleanup: (cleanup: () => Promise<void>) => void;
}

export interface ProducersBenchResult {
  bench: 'producers';
  scale: { auditLogs: number; batches: number; runs: number; runResults: number; batchSpacingMs: number };
  concurrency: number;
  batchFilesPageSize: number;
  /** producers.walkKeysInMemory as the phases ran (the default when not set). */
  walkKeysInMemory: number;
  nodeOptions: string[];
  /** glibc's malloc settings the phases inherited (MALLOC_* variables), which bound native memory. */
  mallocEnv: Record<string, string>;
  runtime: PhaseRuntime;
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

export type PhaseRuntime = 'build' | 'tsx';

type SimReply = { ok: true; url: string; token: string; now: number } | { ok: false; error: string };

/** execArgv split into profiler flags (with the value of one given as `--cpu-prof-dir DIR`) and the rest. */
function splitProfiler(execArgv: string[]): { profiler: string[]; rest: string[] } {
  const profiler: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (!/^--(cpu-prof|prof|heap-prof)/.test(a)) rest.push(a);
    else {
      profiler.push(a);
      if (/^--(cpu-prof|heap-prof)-(dir|name|interval)$/.test(a)) profiler.push(execArgv[++i]!);
    }
  }
  return { profiler, rest };
}

function simulatorInChild(args: number[]): Promise<ChildSimulator> {
  const child = fork(
    fileURLToPath(new URL('./sim-child.ts', import.meta.url)),
    args.map(String),
    // The loader (tsx) comes along; a profiler flag given to the bench does not: the profile is the
    // producers'.
    { execArgv: splitProfiler(process.execArgv).rest.filter((a) => !isSinkNodeFlag(a)) },
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

/**
 * One phase in a process of its own (./producers-child.ts) with `nodeOptions` and the bench's profiler
 * flags: from the build with plain node, or (runtime 'tsx') from the sources with the bench's loader.
 */
function phaseInChild(
  request: PhaseRequest,
  nodeOptions: readonly string[],
  runtime: PhaseRuntime,
): Promise<Phase> {
  const child =
    runtime === 'build'
      ? fork(builtModule('test/bench/producers-child.ts'), [], {
          execArgv: [...splitProfiler(process.execArgv).profiler, ...nodeOptions],
        })
      : fork(fileURLToPath(new URL('./producers-child.ts', import.meta.url)), [], {
          // The bench's own node flags are the sinks' (package.json): the producers get only nodeOptions.
          execArgv: [...process.execArgv.filter((a) => !isSinkNodeFlag(a)), ...nodeOptions],
        });
  const killChild = () => child.kill();
  process.once('exit', killChild);
  return new Promise<Phase>((resolve, reject) => {
    let replied = false;
    child.once('message', (m) => {
      replied = true;
      const reply = m as PhaseReply;
      if (reply.ok) resolve(reply.phase);
      else reject(new Error(`phase ${request.label} failed: ${reply.error}`));
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('exit', killChild);
      if (!replied) reject(new Error(`phase ${request.label}: its process exited (${code ?? signal})`));
    });
    child.send(request);
  });
}

export async function runProducersBench(o: ProducersBenchOptions): Promise<ProducersBenchResult> {
  if (o.runtime === 'build') await build();
  const filesPerRun = 5;
  const docsPerFile = 2;
  // Frozen clock: both phases see the same backlog. Runs spread over the last 20 hours, audit entries
  // one a second, so the default 7-day first lookback covers 300,000 of them (3.5 days). Batches are a
  // minute apart, or closer when there are more than two days of them: a third of batches gain a file
  // every 5-60 minutes, so at a minute apart 20,000 batches would reach back 14 days and hold millions
  // of files, the oldest more than the paging guard lets a first walk take.
  const batchSpacingMs = o.batchSpacingMs ?? Math.min(60_000, Math.floor((48 * 3_600_000) / o.batches));
  const walkKeysInMemory = o.walkKeysInMemory ?? testConfig('defaults').producers.walkKeysInMemory;
  const sim = await simulatorInChild([
    o.auditLogs,
    o.batches,
    o.runs,
    filesPerRun,
    docsPerFile,
    batchSpacingMs,
  ]);
  const prefixes: string[] = [];
  const phase = (label: string, counting: boolean) => {
    const prefix = uniqueName('pbench');
    prefixes.push(prefix);
    const overrides: ConfigInput = {
      instabase: { apiUrl: sim.url, token: sim.token, rps: 0, concurrency: o.concurrency },
      producers: {
        concurrency: o.concurrency,
        initialLookbackMs: 30 * 24 * 3_600_000,
        // One poll per resource in a phase: at the default interval (30 s) a resource whose first walk
        // is done polls again while a longer one still walks, so the phase measured second walks too,
        // and on a slow machine it could not end (it waits for a moment with no poll running).
        defaultIntervalMs: 24 * 3_600_000,
        batchFilesPageSize: o.batchFilesPageSize,
        walkKeysInMemory,
      },
    };
    return phaseInChild({ label, counting, prefix, overrides, now: sim.now }, o.nodeOptions, o.runtime);
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
    const kafka = await phase('a: into Kafka', false);
    const ceiling = await phase('b: counting', true);
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
        batchSpacingMs,
      },
      concurrency: o.concurrency,
      batchFilesPageSize: o.batchFilesPageSize,
      walkKeysInMemory,
      nodeOptions: o.nodeOptions,
      mallocEnv: Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] => /^MALLOC_/.test(e[0]) && e[1] !== undefined,
        ),
      ),
      runtime: o.runtime,
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
  const parts = (p: Phase) =>
    p.peakRssAnonMb === null ? '' : ` (anon ${p.peakRssAnonMb}, file ${p.peakRssFileMb})`;
  const atPeak = (p: Phase) =>
    p.atPeakAnon === null
      ? ''
      : `\n  ${''.padEnd(26)} anon peak at ${p.atPeakAnon.seconds} s: V8 heap ${p.atPeakAnon.heapTotalMb} MB ` +
        `(${p.atPeakAnon.heapUsedMb} in use), external ${p.atPeakAnon.externalMb} MB, ` +
        `V8's malloc ${p.atPeakAnon.v8MallocedMb} MB`;
  const row = (name: string, p: Phase) =>
    `  ${name.padEnd(26)} ${String(p.recordsPerSecond).padStart(8)} rec/s  ${p.seconds.toFixed(1).padStart(6)} s  ` +
    `${p.cpuMicrosPerRecord} µs CPU/record  peak RSS ${p.peakRssMb} MB${parts(p)}  live heap ${p.liveHeapMb} MB${atPeak(p)}`;
  return [
    `producers benchmark: ${r.scale.auditLogs} audit entries, ${r.scale.batches} batches, ${r.scale.runs} runs ` +
      `(${r.scale.runResults} results), batches ${r.scale.batchSpacingMs} ms apart, concurrency ${r.concurrency}, ` +
      `no rate limit, walkKeysInMemory ${r.walkKeysInMemory}, ` +
      `node flags: ${r.nodeOptions.length ? r.nodeOptions.join(' ') : 'none'}; ` +
      `malloc: ${
        Object.entries(r.mallocEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || 'defaults'
      }; runs ${r.runtime === 'build' ? 'the build (dist/)' : 'the sources through tsx'}`,
    row('(a) into Kafka', r.kafka),
    row('(b) counting (no Kafka)', r.ceiling),
    `  a/b = ${r.ratios.kafkaToCeiling} (goal ≥ 0.7: ${r.ratios.kafkaToCeiling >= 0.7 ? 'met' : 'not met'}); ` +
      `RSS goal ≤ 150 MB: ${r.kafka.peakRssMb <= 150 ? 'met' : 'not met'} (each phase in a process of its own)`,
  ].join('\n');
}

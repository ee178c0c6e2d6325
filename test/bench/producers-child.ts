// One phase of the producers bench (./producers.ts), in a process of its own: startProducers walking the
// simulator's backlog, into Kafka or with publishing replaced by counting. A process per phase, so that
// its peak RSS and CPU time are the producers' alone: not the bench's, not the simulator's (another
// child), and not what the other phase left on the heap. It also runs with the node flags a
// deployment would give the producers (--node-options), which the bench process itself does not have.
// The parent sends a PhaseRequest and gets a PhaseReply back.
import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Config, ConfigInput } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { startProducers } from '../../producers/daemon.ts';
import { TransactionalPublisher, type Publisher, type PublishUnit } from '../../producers/publisher.ts';
import { testConfig } from '../helpers/pipeline.ts';
import { rssParts } from './rss.ts';

export interface PhaseRequest {
  label: string;
  /** Publishing replaced by counting: phase (b). */
  counting: boolean;
  prefix: string;
  overrides: ConfigInput;
  /** The simulator's frozen virtual time. */
  now: number;
}

export interface Phase {
  seconds: number;
  records: number;
  recordsPerSecond: number;
  /** CPU time of the phase's process per record published. */
  cpuMicrosPerRecord: number;
  /** The process's peak resident set (getrusage's maxrss): everything, start-up included. */
  peakRssMb: number;
  /**
   * The peaks of its two parts, sampled every 100 ms from /proc/self/status (Linux): anonymous memory
   * (V8's heap, native allocations) and file pages mapped in (the node binary, LevelDB's table files),
   * which the kernel can drop and read again. Null where /proc is not there.
   */
  peakRssAnonMb: number | null;
  peakRssFileMb: number | null;
  /**
   * When anonymous memory peaked (seconds into the phase), V8's heap then (committed and in use), the
   * memory outside it that V8 knows of (Buffers) and V8's own malloc'd memory: where the peak's anonymous
   * memory was. The rest is other native memory (LevelDB, glibc's free lists, thread stacks).
   */
  atPeakAnon: {
    seconds: number;
    heapTotalMb: number;
    heapUsedMb: number;
    externalMb: number;
    /** What V8 itself holds from malloc (compilers' zones and the like), outside its heap. */
    v8MallocedMb: number;
  } | null;
  /**
   * Heap in use after a full garbage collection at the end of the phase, the producers still running:
   * what stays live (code, libraries, state held in memory), without the garbage V8 lets pile up.
   */
  liveHeapMb: number;
  perResource: Record<string, number>;
}

export type PhaseReply = { ok: true; phase: Phase } | { ok: false; error: string };

/** A full garbage collection, without starting the process with --expose-gc. */
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

async function walk(request: PhaseRequest, logger: Logger): Promise<Phase> {
  const config = testConfig(request.prefix, request.overrides);
  const publisher = request.counting ? new CountingPublisher(config, logger) : undefined;
  let peakAnon = 0;
  let peakFile = 0;
  let sampled = true;
  let atPeakAnon: Phase['atPeakAnon'] = null;
  const started = performance.now();
  const sample = () => {
    const parts = rssParts();
    if (!parts) sampled = false;
    else {
      if (parts.anon > peakAnon) {
        const m = process.memoryUsage();
        atPeakAnon = {
          seconds: Math.round((performance.now() - started) / 100) / 10,
          heapTotalMb: mb(m.heapTotal),
          heapUsedMb: mb(m.heapUsed),
          externalMb: mb(m.external),
          v8MallocedMb: mb(getHeapStatistics().malloced_memory),
        };
      }
      peakAnon = Math.max(peakAnon, parts.anon);
      peakFile = Math.max(peakFile, parts.file);
    }
  };
  sample();
  const sampler = setInterval(sample, 100);
  const cpu0 = process.cpuUsage();
  const producers = await startProducers(config, logger, {
    now: () => request.now,
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
        const line = `(${request.label}) ${records} records, ${Math.round(records / ((performance.now() - started) / 1000))}/s`;
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
  sample();
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
    // maxRSS is in kilobytes.
    peakRssMb: mb(process.resourceUsage().maxRSS * 1024),
    peakRssAnonMb: sampled ? mb(peakAnon) : null,
    peakRssFileMb: sampled ? mb(peakFile) : null,
    atPeakAnon,
    liveHeapMb: mb(liveHeap),
    perResource,
  };
}

process.once('message', (m) => {
  const logger = createLogger('bench', undefined, process.env.LOG_LEVEL ?? 'error');
  walk(m as PhaseRequest, logger).then(
    (phase) => process.send!({ ok: true, phase } satisfies PhaseReply, () => process.exit(0)),
    (err: unknown) =>
      process.send!(
        {
          ok: false,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        } satisfies PhaseReply,
        () => process.exit(1),
      ),
  );
});

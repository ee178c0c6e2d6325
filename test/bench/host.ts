// What else a phase's CPU figures depend on: time the hypervisor gave the machine's CPUs to someone
// else (steal, from /proc/stat), and this process's garbage collection. On a shared 2-core machine a
// slow run can be the host's doing, not the code's; these say which.
import { readFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';

interface CpuTimes {
  total: number;
  steal: number;
}

function cpuTimes(): CpuTimes | undefined {
  try {
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice", in clock ticks.
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1);
    const ticks = fields.slice(0, 8).map(Number);
    return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] ?? 0 };
  } catch {
    return undefined;
  }
}

export interface GcStats {
  /** Scavenges of the young generation. */
  minorCount: number;
  minorMs: number;
  /** Mark-sweep-compacts of the old generation. */
  majorCount: number;
  majorMs: number;
  /** Starts of incremental marking (one entry per start, not per step), and weak-callback processing. */
  incrementalCount: number;
  incrementalMs: number;
  weakCallbacksCount: number;
  weakCallbacksMs: number;
  /** Kinds node has no constant for (a minor mark-sweep under V8's --minor-ms). */
  otherCount: number;
  otherMs: number;
}

export interface HostStats {
  /** Share of all CPUs' time taken by steal during the phase, in percent; undefined without /proc. */
  stealPercent: number | undefined;
  gc: GcStats;
}

/**
 * Starts watching; the returned function stops and reports what happened in between. It waits two
 * turns of the event loop first: node delivers GC entries that late.
 */
export function watchHost(): () => Promise<HostStats> {
  const before = cpuTimes();
  const gc: GcStats = {
    minorCount: 0,
    minorMs: 0,
    majorCount: 0,
    majorMs: 0,
    incrementalCount: 0,
    incrementalMs: 0,
    weakCallbacksCount: 0,
    weakCallbacksMs: 0,
    otherCount: 0,
    otherMs: 0,
  };
  const kinds = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakCallbacks',
  } as const;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      const name = kinds[kind as keyof typeof kinds] ?? 'other';
      gc[`${name}Count`]++;
      gc[`${name}Ms`] += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return async () => {
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    observer.disconnect();
    const after = cpuTimes();
    const round = (n: number) => Math.round(n * 10) / 10;
    const stealPercent =
      before && after && after.total > before.total
        ? round((100 * (after.steal - before.steal)) / (after.total - before.total))
        : undefined;
    return {
      stealPercent,
      gc: {
        ...gc,
        minorMs: Math.round(gc.minorMs),
        majorMs: Math.round(gc.majorMs),
        incrementalMs: Math.round(gc.incrementalMs),
        weakCallbacksMs: Math.round(gc.weakCallbacksMs),
        otherMs: Math.round(gc.otherMs),
      },
    };
  };
}

// CPU profiles of one benchmark phase (the inspector's sampling profiler, started and stopped around
// the phase, in this process) and a self-time summary of any .cpuprofile, including those written by
// `node --cpu-prof`.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Starts the sampling profiler when a file is given; the returned function stops it and writes the
 * profile there. Without a file both are no-ops.
 */
export async function startProfile(file: string | undefined): Promise<() => Promise<void>> {
  if (!file) return async () => undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/** Profiles `phase` into `file`, when a file is given; otherwise just runs it. */
export async function profiled<T>(file: string | undefined, phase: () => Promise<T>): Promise<T> {
  const stop = await startProfile(file);
  try {
    return await phase();
  } finally {
    await stop();
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where a function lives: a package name for node_modules, a project path, or node's own. */
function origin(url: string): string {
  if (!url) return '(native/vm)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return 'node';
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  percent: number;
}

/** Self time per function and per origin (package or file), largest first. */
export function selfTimes(profile: CpuProfile): {
  total: number;
  functions: SelfTime[];
  origins: SelfTime[];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const functions = new Map<string, SelfTime>();
  const origins = new Map<string, SelfTime>();
  const add = (map: Map<string, SelfTime>, key: string, name: string, where: string, us: number) => {
    const entry = map.get(key) ?? { name, where, ms: 0, percent: 0 };
    entry.ms += us / 1000;
    map.set(key, entry);
  };
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    const from = origin(frame.url);
    const where = frame.url ? `${from}:${frame.lineNumber + 1}` : from;
    add(functions, `${name}@${where}`, name, where, us);
    add(origins, from, from, '', us);
  }
  const sorted = (map: Map<string, SelfTime>) =>
    [...map.values()]
      .map((e) => ({
        ...e,
        ms: Math.round(e.ms),
        percent: Math.round((e.ms / (totalUs / 1000)) * 1000) / 10,
      }))
      .sort((a, b) => b.ms - a.ms);
  return { total: Math.round(totalUs / 1000), functions: sorted(functions), origins: sorted(origins) };
}

/** The top of a profile as text: functions by self time, then packages/files by self time. */
export function profileSummary(file: string, limit = 25): string {
  const { total, functions, origins } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const line = (e: SelfTime) =>
    `  ${String(e.ms).padStart(7)} ms ${e.percent.toFixed(1).padStart(5)}%  ${e.name}${e.where ? `  ${e.where}` : ''}`;
  return [
    `${file}: ${total} ms sampled`,
    'self time by function:',
    ...functions.slice(0, limit).map(line),
    'self time by package or file:',
    ...origins.slice(0, Math.min(limit, 15)).map(line),
  ].join('\n');
}

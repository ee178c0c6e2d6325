import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PidRecord {
  pid: number;
  /** A string that only our process for this service has in its command line (a config path under .stack). */
  marker: string;
  startedAt: string;
}

export function readPidFile(file: string): PidRecord | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<PidRecord>;
    if (typeof rec.pid === 'number' && typeof rec.marker === 'string') {
      return { pid: rec.pid, marker: rec.marker, startedAt: String(rec.startedAt ?? '') };
    }
  } catch {
    // missing or unreadable: treated as not running
  }
  return undefined;
}

export function writePidFile(file: string, rec: PidRecord): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(rec) + '\n');
}

export function removePidFile(file: string): void {
  fs.rmSync(file, { force: true });
}

function cmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/**
 * Alive and still ours: a pid from an old pid file may have been reused by an unrelated process after a
 * reboot, and that one must never be signalled, hence the command-line marker check.
 */
export function isOurs(rec: PidRecord): boolean {
  // a zombie still has /proc/<pid> but an empty cmdline, so it does not count as alive either
  return cmdline(rec.pid)?.includes(rec.marker) ?? false;
}

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
}

/** A server started by spawnDetached: its pid, and how it ended once it has (while this process runs). */
export interface DetachedProcess {
  pid: number;
  /** `exit code 1`, `killed by SIGKILL` …; undefined while it runs or before node has reaped it. */
  exitStatus: () => string | undefined;
}

/**
 * Starts a long-lived server detached in its own process group, stdout and stderr appended to its log, so
 * it outlives the CLI that started it and `down` can signal the whole group. The exit status is kept
 * because a server killed by a signal writes nothing to its log: without it, a start-up failure would
 * show an empty log and no reason.
 */
export function spawnDetached(spec: SpawnSpec): DetachedProcess {
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  fs.appendFileSync(spec.logFile, `\n===== ${new Date().toISOString()} starting: ${spec.command} =====\n`);
  const fd = fs.openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
    let status: string | undefined;
    child.once('exit', (code, signal) => {
      status = describeExit(code, signal);
    });
    child.unref();
    return { pid: child.pid, exitStatus: () => status };
  } finally {
    fs.closeSync(fd);
  }
}

/** How a process ended, in words; a SIGKILL nobody here sent is most often the kernel's OOM killer. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') {
    return `killed by SIGKILL (the stack sends none at start-up; the kernel's out-of-memory killer does, see dmesg; ${memAvailable()})`;
  }
  if (signal) return `killed by ${signal}`;
  return `exit code ${code ?? '?'}`;
}

function memAvailable(): string {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m?.[1]) return `${Math.round(Number(m[1]) / 1024)} MB available now`;
  } catch {
    // not Linux
  }
  return 'available memory unknown';
}

/**
 * The exit status of a process that has just been seen gone: node reaps it on its next turn, so this
 * waits up to a second for the status rather than report none.
 */
export async function exitStatusOf(proc: DetachedProcess): Promise<string> {
  const deadline = Date.now() + 1_000;
  while (proc.exitStatus() === undefined && Date.now() < deadline) await sleep(20);
  return proc.exitStatus() ?? 'exit status unknown';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, wait for a clean shutdown (Kafka flushes its logs), then SIGKILL whatever is left of the group. */
export async function stopProcess(rec: PidRecord, graceMs = 30_000): Promise<'stopped' | 'killed' | 'gone'> {
  if (!isOurs(rec)) return 'gone';
  signalGroup(rec.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(rec.pid)) return 'stopped';
    await sleep(200);
  }
  signalGroup(rec.pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while (groupAlive(rec.pid) && Date.now() < killDeadline) await sleep(100);
  return 'killed';
}

/** True when nothing listens on host:port, so our server can bind it. */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The last `lines` lines of a log, optionally only of what was written after byte `from` (this start). */
export function tail(file: string, lines = 40, from = 0): string {
  try {
    const buf = fs.readFileSync(file);
    const text = buf.subarray(Math.min(from, buf.length)).toString('utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Polls `check` until it returns true or the deadline passes. `exited` lets the wait stop early when the
 * process died, instead of sitting out the whole timeout.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; exited?: () => boolean },
): Promise<'ok' | 'timeout' | 'exited'> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return 'ok';
    if (opts.exited?.()) return 'exited';
    if (Date.now() >= deadline) return 'timeout';
    await sleep(opts.intervalMs ?? 500);
  }
}

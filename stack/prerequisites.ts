import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { displayPath } from './config.ts';
import { tail } from './process.ts';
import type { Progress } from './service.ts';

/**
 * A program the local stack runs or fetches with, and the Debian package that provides it. Every entry
 * point (`npm start`, `npm test`, `npm run stack -- up|install`) goes through ensurePrerequisites, so a
 * fresh Debian 12 machine gets the same packages whichever command a person types first.
 */
export interface Requirement {
  /** What a person reads: the program and what the stack needs it for. */
  what: string;
  /** The Debian packages that provide it (bookworm names). */
  apt: string[];
  present(): boolean;
}

/** Options for tests and for people who do not want packages installed behind their back. */
export interface PrerequisiteOptions {
  progress: Progress;
  /** apt-get's output goes here rather than to the terminal; its tail is shown on failure. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** Default: root with apt-get on the PATH, unless STACK_AUTO_INSTALL=0. */
  canInstall?: boolean;
  /** Runs one apt-get invocation; replaceable so the flow can be tested without touching the machine. */
  runApt?: (args: string[], logFile: string) => Promise<number>;
}

export class PrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrerequisiteError';
  }
}

export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The packages of every missing requirement, each once, in the order first needed. */
export function missingPackages(reqs: readonly Requirement[]): {
  missing: Requirement[];
  packages: string[];
} {
  const missing: Requirement[] = [];
  const seen = new Set<string>();
  for (const r of reqs) {
    const key = r.apt.join(' ');
    if (seen.has(key) || r.present()) continue;
    seen.add(key);
    missing.push(r);
  }
  return { missing, packages: [...new Set(missing.flatMap((r) => r.apt))] };
}

/** The exact commands a person runs when the stack cannot install for them. */
export function installCommands(packages: readonly string[], root = isRoot()): string {
  const sudo = root ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

function explain(missing: readonly Requirement[], packages: readonly string[], why: string): string {
  return [
    `missing on this machine: ${missing.map((r) => r.what).join('; ')}.`,
    `${why} Install with:`,
    `  ${installCommands(packages)}`,
    'then run the command again. Or point KAFKA_BROKERS, SCHEMA_REGISTRY_URL and CLICKHOUSE_URL at servers ' +
      'you already run (nothing is started for those).',
  ].join('\n');
}

/** apt-get with its output in logFile; resolves to the exit code. */
async function spawnApt(args: string[], logFile: string): Promise<number> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn('apt-get', args, {
        stdio: ['ignore', out, out],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' },
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    fs.closeSync(out);
  }
}

const LOCKED = /Could not get lock|Unable to acquire the dpkg frontend lock|is another process using it/;

/**
 * One apt-get step. `DPkg::Lock::Timeout` makes `install` wait for another apt or dpkg run (an unattended
 * upgrade, another job); `update` takes the lists lock, which that option does not cover on every apt
 * release, so a lock failure is retried here too, for the same ten minutes.
 */
async function aptStep(
  args: string[],
  logFile: string,
  runApt: (args: string[], logFile: string) => Promise<number>,
  progress: Progress,
): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const from = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const code = await runApt(['-o', 'DPkg::Lock::Timeout=600', '-q', ...args], logFile);
    if (code === 0) return;
    const out = tail(logFile, 30, from);
    if (LOCKED.test(out) && Date.now() < deadline) {
      progress('apt is busy (another apt or dpkg holds the lock); waiting …');
      await sleep(5_000);
      continue;
    }
    throw new PrerequisiteError(
      `apt-get ${args.join(' ')} failed (exit ${code}); full output in ${displayPath(logFile)}:\n${out}`,
    );
  }
}

// The Debian package of clickhouse-server starts its own system service on 8123/9000 when installed,
// which would take the ports of the stack's ClickHouse. policy-rc.d is Debian's switch for exactly this
// (invoke-rc.d and deb-systemd-invoke both honour it); it is removed again right after the install.
const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const POLICY_SCRIPT =
  '#!/bin/sh\n# Written by instabase-stream stack/prerequisites.ts for one apt-get install.\nexit 101\n';

/**
 * Installs, as root with apt, the packages of every requirement that is not met; otherwise fails with the
 * exact commands to run. apt-get update runs first on every install, since a fresh machine's package
 * lists are empty or stale.
 */
export async function ensurePrerequisites(
  reqs: readonly Requirement[],
  opts: PrerequisiteOptions,
): Promise<string[]> {
  const env = opts.env ?? process.env;
  const { missing, packages } = missingPackages(reqs);
  if (missing.length === 0) return [];
  const optedOut = env.STACK_AUTO_INSTALL === '0';
  const canInstall = opts.canInstall ?? (!optedOut && isRoot() && onPath('apt-get', env) !== undefined);
  if (!canInstall) {
    const why = optedOut
      ? 'STACK_AUTO_INSTALL=0, so the stack installs nothing itself.'
      : !onPath('apt-get', env)
        ? 'This machine has no apt-get; on Debian or Ubuntu the packages are these (elsewhere, their equivalents).'
        : 'Installing packages needs root.';
    throw new PrerequisiteError(explain(missing, packages, why));
  }

  const runApt = opts.runApt ?? spawnApt;
  const started = Date.now();
  opts.progress(
    `installing ${packages.join(', ')} with apt (${missing.map((r) => r.what).join('; ')}); ` +
      `log: ${displayPath(opts.logFile)} …`,
  );
  await aptStep(['update'], opts.logFile, runApt, opts.progress);
  // A replaced apt runner (the tests) must not touch the machine's service policy either.
  const clickhouse = opts.runApt === undefined && packages.includes('clickhouse-server');
  const guard = clickhouse && !fs.existsSync(POLICY_RC_D);
  if (guard) fs.writeFileSync(POLICY_RC_D, POLICY_SCRIPT, { mode: 0o755 });
  try {
    await aptStep(
      ['install', '-y', '--no-install-recommends', ...packages],
      opts.logFile,
      runApt,
      opts.progress,
    );
  } finally {
    if (guard) fs.rmSync(POLICY_RC_D, { force: true });
  }
  if (clickhouse) await disableClickHouseService(opts.logFile);

  const still = missing.filter((r) => !r.present());
  if (still.length > 0) {
    throw new PrerequisiteError(
      `apt-get installed ${packages.join(' ')} but still missing: ${still.map((r) => r.what).join('; ')} ` +
        `(see ${displayPath(opts.logFile)})`,
    );
  }
  opts.progress(`installed ${packages.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  return packages;
}

/**
 * The package also enables its system service for the next boot; the stack runs its own ClickHouse on
 * the same ports, so the system one is disabled (best effort: the machine may have neither systemd nor
 * sysv links, and a failure here only means a port clash later, which `up` reports by itself).
 */
async function disableClickHouseService(logFile: string): Promise<void> {
  const run = (cmd: string, args: string[]) =>
    new Promise<void>((resolve) => {
      const out = fs.openSync(logFile, 'a');
      const child = spawn(cmd, args, { stdio: ['ignore', out, out] });
      const done = () => {
        fs.closeSync(out);
        resolve();
      };
      child.once('error', done);
      child.once('exit', done);
    });
  if (fs.existsSync('/run/systemd/system') && onPath('systemctl')) {
    await run('systemctl', ['disable', 'clickhouse-server.service']);
  }
  if (onPath('update-rc.d') && fs.existsSync('/etc/init.d/clickhouse-server')) {
    await run('update-rc.d', ['clickhouse-server', 'disable']);
  }
}

/**
 * `instabase-stream producers` or `sinks` as a child process that a test can SIGKILL and start again, with
 * its log appended to one file across restarts and its /healthz on a fixed port. An exit the test did not
 * cause is recorded (with the log's last problems) and the process is started again, so a run goes on
 * and reports every such exit at the end instead of hanging on a dead process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliNodeArgs } from '../../core/node-flags.ts';
import { builtModule } from './built.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface UnexpectedExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last warn/error lines of the log before the exit. */
  problems: string;
}

export interface DaemonSpec {
  /** Names the log file and the messages. */
  name: string;
  /** `producers` or `sinks` (plus its options). */
  command: string[];
  /** The whole environment of the child: endpoints, names, HTTP_PORT, LOG_LEVEL. */
  env: Record<string, string>;
  /** A JSON config file's contents (the settings that have no environment variable). */
  config: Record<string, unknown>;
  dir: string;
  httpPort: number;
}

export class DaemonProcess {
  readonly unexpectedExits: UnexpectedExit[] = [];
  readonly logFile: string;
  private readonly configFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Set while the test itself stops or kills the process, so that exit is not counted as unexpected. */
  private expectingExit = false;
  private closed = false;
  starts = 0;

  constructor(readonly spec: DaemonSpec) {
    this.logFile = path.join(spec.dir, `${spec.name}.log`);
    this.configFile = path.join(spec.dir, `${spec.name}.config.json`);
    fs.writeFileSync(this.configFile, JSON.stringify(spec.config));
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) return;
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(
      process.execPath,
      // With the node flags that the README's commands and the image give them (core/node-flags.ts).
      cliNodeArgs(builtModule('cli/main.ts'), ['--config', this.configFile], this.spec.command),
      {
        cwd: ROOT,
        env: { ...this.spec.env, HTTP_PORT: String(this.spec.httpPort) },
        stdio: ['ignore', log, log],
      },
    );
    fs.closeSync(log);
    this.child = child;
    this.starts += 1;
    this.expectingExit = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (!this.expectingExit && !this.closed) {
          this.unexpectedExits.push({ name: this.spec.name, code, signal, problems: this.problems() });
          // Started again so the run goes on; the exit itself fails the test at the end.
          setTimeout(() => {
            if (!this.closed && !this.running) this.start();
          }, 1_000);
        }
        resolve();
      }),
    );
  }

  /** SIGKILL, as a crash: nothing of the process's shutdown path runs. */
  async kill(): Promise<void> {
    this.expectingExit = true;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process is frozen (a long GC pause, a partitioned host) until resume(). */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** SIGTERM, then SIGKILL after the bound; the process is not started again. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.closed = true;
    this.expectingExit = true;
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The JSON of /healthz, or undefined while the process does not answer. */
  async health(): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.spec.httpPort}/healthz`, {
        signal: AbortSignal.timeout(2_000),
      });
      return (await res.json()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * The last lines of the log at warn level or above, and lines that are not pino's (what node itself
   * prints when a process dies of an uncaught error, without its stack frames).
   */
  problems(lines = 5): string {
    return this.log()
      .split('\n')
      .filter(
        (l) =>
          /"level":(40|50|60)/.test(l) ||
          (l.trim() !== '' && !l.startsWith('{') && !/^\s+at |^Node\.js v/.test(l)),
      )
      .slice(-lines)
      .join('\n');
  }
}

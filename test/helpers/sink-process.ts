/**
 * `instabase-stream sinks` as a child process, configured like a deployment would be: environment
 * variables for the endpoints and names, a config file for the flush settings. Its log (stderr) goes to
 * a file for the failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../core/config.ts';
import { cliNodeArgs } from '../../core/node-flags.ts';
import { builtModule } from './built.ts';
import { daemonEnv } from './daemon-env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const started = new Set<SinkProcess>();

/** SIGKILLs the sink processes still running and removes every one's config and log. */
export async function removeSinkProcesses(): Promise<void> {
  for (const p of started) {
    if (p.running) await p.kill('SIGKILL').catch(() => undefined);
    fs.rmSync(p.dir, { recursive: true, force: true });
  }
  started.clear();
}

export class SinkProcess {
  readonly exited: Promise<ExitStatus>;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal: signal as NodeJS.Signals | null })),
    );
    started.add(this);
  }

  /** Starts `cli/main.ts --config <file> sinks [args]` with the config's endpoints and names. */
  static start(config: Config, args: string[] = [], logName = 'sink'): SinkProcess {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-sink-'));
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ sinks: config.sinks }));
    const logFile = path.join(dir, `${logName}.log`);
    const log = fs.openSync(logFile, 'a');
    const env = daemonEnv(config, { LOG_LEVEL: process.env.SINK_LOG_LEVEL ?? 'info', HTTP_PORT: '0' });
    const child = spawn(
      process.execPath,
      cliNodeArgs(builtModule('cli/main.ts'), ['--config', configFile], ['sinks', ...args]),
      { cwd: ROOT, env, stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    return new SinkProcess(child, dir, logFile);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** The last lines of its log at warn level or above, for assertion messages. */
  problems(lines = 5): string {
    return this.log()
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l))
      .slice(-lines)
      .join('\n');
  }

  /** Throws with the log's problems when the process has exited. */
  assertRunning(): void {
    if (!this.running) {
      throw new Error(
        `the sink process exited (${this.child.exitCode ?? this.child.signalCode}): ${this.problems()}`,
      );
    }
  }

  async kill(signal: NodeJS.Signals, timeoutMs = 30_000): Promise<ExitStatus> {
    if (this.running) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            this.child.kill('SIGKILL');
            reject(new Error(`the sink process did not exit within ${timeoutMs} ms of ${signal}`));
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

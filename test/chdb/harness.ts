/**
 * A current ClickHouse for the tests: test/chdb/server.py (an HTTP front over a chDB session) started
 * from the repository's .venv (test/python/setup.sh) on a free loopback port, in a temporary data
 * directory. @clickhouse/client talks to it like to a server, so the sinks' code runs unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/sink-clickhouse.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHDB_PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const SERVER = path.join(ROOT, 'test', 'chdb', 'server.py');

/** Why the harness cannot run here, or undefined when it can (the test then skips with this reason). */
export function chdbUnavailable(): string | undefined {
  const setup = 'run bash test/python/setup.sh (it installs the pinned chdb-core)';
  if (!fs.existsSync(CHDB_PYTHON)) return `${CHDB_PYTHON} is missing: ${setup}`;
  const lib = path.join(ROOT, '.venv', 'lib');
  const installed =
    fs.existsSync(lib) &&
    fs
      .readdirSync(lib)
      .some((python) => fs.existsSync(path.join(lib, python, 'site-packages', 'chdb', '__init__.py')));
  return installed ? undefined : `chdb is not installed in ${path.dirname(lib)}: ${setup}`;
}

export interface ChdbClickHouse {
  readonly url: string;
  /** version() as the engine reports it, e.g. 26.9.2.1. */
  readonly version: string;
  stop(): Promise<void>;
}

export interface ChdbOptions {
  /**
   * A ClickHouse config (XML text) the engine starts with: e.g. remote_servers and macros, so that
   * Distributed tables and `{shard}`/`{replica}` have something to resolve.
   */
  readonly config?: string;
}

export async function startChdbClickHouse(
  timeoutMs = 60_000,
  options: ChdbOptions = {},
): Promise<ChdbClickHouse> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-chdb-'));
  const port = await freePort();
  const args = [SERVER, '--port', String(port), '--path', path.join(home, 'data')];
  if (options.config !== undefined) {
    const file = path.join(home, 'config.xml');
    fs.writeFileSync(file, options.config);
    args.push('--config', file);
  }
  const child: ChildProcess = spawn(CHDB_PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(home, { recursive: true, force: true });
  };
  try {
    const version = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`chDB front not up in ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      );
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening \d+ version (\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`chDB front exited with ${code}: ${stderr}`));
      });
    });
    return { url: `http://127.0.0.1:${port}`, version, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A private ClickHouse server for a test that has to stop it (the shared one must never go down): free
 * ports, a temporary directory, a config.xml and users.xml that ClickHouse 18.16 and current releases
 * both read. Stopped and started again on the same ports and data directory, it keeps its tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { configXml, findServer, usersXml } from '../../stack/clickhouse.ts';
import type { Ports } from '../../stack/config.ts';
import { waitFor } from './pipeline.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export class PrivateClickHouse {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly home: string,
    readonly httpPort: number,
    readonly tcpPort: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get logFile(): string {
    return path.join(this.home, 'server.log');
  }

  static async create(): Promise<PrivateClickHouse> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-ch-'));
    const ch = new PrivateClickHouse(home, await freePort(), await freePort());
    for (const d of ['data', 'tmp', 'user_files', 'format_schemas']) fs.mkdirSync(path.join(home, d));
    // The stack's own generators, so the private server is configured like the one it stands in for.
    const ports = { clickhouseHttp: ch.httpPort, clickhouseTcp: ch.tcpPort } as Ports;
    fs.writeFileSync(
      path.join(home, 'config.xml'),
      configXml({ ports }, home, undefined, 'test/helpers/sink-clickhouse.ts'),
    );
    fs.writeFileSync(
      path.join(home, 'users.xml'),
      usersXml([{ name: 'default' }], 'test/helpers/sink-clickhouse.ts'),
    );
    return ch;
  }

  async ping(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/ping`, { signal: AbortSignal.timeout(2_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Starts the server (again) and waits until it answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.child && running(this.child)) throw new Error('private ClickHouse already running');
    const { command, prefixArgs: args } = findServer();
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(command, [...args, `--config-file=${path.join(this.home, 'config.xml')}`], {
      cwd: this.home,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(
      `private ClickHouse on ${this.httpPort} (log ${this.logFile})`,
      async () => {
        if (!running(child)) throw new Error(`private ClickHouse exited: see ${this.logFile}`);
        return this.ping();
      },
      timeoutMs,
    );
  }

  /** Stops the server with `signal` and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !running(child)) return;
    child.kill(signal);
    await this.exited;
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

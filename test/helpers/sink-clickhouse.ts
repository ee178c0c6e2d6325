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
import { waitFor } from './pipeline.ts';

function serverCommand(): { command: string; args: string[] } {
  const override = process.env.STACK_CLICKHOUSE_BIN;
  if (override)
    return { command: override, args: path.basename(override) === 'clickhouse' ? ['server'] : [] };
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const [name, args] of [
    ['clickhouse-server', []],
    ['clickhouse', ['server']],
  ] as const) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        return { command: candidate, args: [...args] };
      } catch {
        // keep looking
      }
    }
  }
  throw new Error('no clickhouse-server or clickhouse binary (set STACK_CLICKHOUSE_BIN)');
}

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
    const dir = (name: string) => path.join(home, name) + '/';
    fs.writeFileSync(
      path.join(home, 'config.xml'),
      `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${ch.httpPort}</http_port>
  <tcp_port>${ch.tcpPort}</tcp_port>
  <path>${dir('data')}</path>
  <tmp_path>${dir('tmp')}</tmp_path>
  <user_files_path>${dir('user_files')}</user_files_path>
  <format_schema_path>${dir('format_schemas')}</format_schema_path>
  <users_config>${path.join(home, 'users.xml')}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_server_memory_usage>1073741824</max_server_memory_usage>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
    );
    fs.writeFileSync(
      path.join(home, 'users.xml'),
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1073741824</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
`,
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
    const { command, args } = serverCommand();
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

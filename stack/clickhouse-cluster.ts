// A local ClickHouse cluster for CLICKHOUSE_CLUSTER: one shard of N replicas (clickhouse-server 18.16
// as Debian ships it, or STACK_CLICKHOUSE_BIN) coordinated by Debian's ZooKeeper, all plain processes
// on loopback ports, each with its own directory, log and pid file under `<dir>`. `npm run stack -- up
// --clickhouse-replicas 2` starts it; the cluster test (test/integration/clickhouse-cluster.test.ts)
// starts its own in a directory of its own.
//
// Everything a replica needs beyond the single server's config.xml (clickhouse.ts): remote_servers
// (the cluster, internal_replication so that a Distributed insert goes to one replica and replication
// copies it), macros (`{shard}`, `{replica}` in the Replicated engines' arguments), the ZooKeeper
// node, an interserver port (replicas fetch parts from each other over it) and distributed_ddl (18.16
// only runs ON CLUSTER statements when it is configured). All of it is also read by current releases,
// which can use ClickHouse Keeper instead of ZooKeeper at the same <zookeeper> section (stack/README.md).
import fs from 'node:fs';
import path from 'node:path';
import { CLICKHOUSE_SERVER, configXml, findServer, usersXml } from './clickhouse.ts';
import { HOST, type Ports, type StackConfig } from './config.ts';
import { findJava } from './java.ts';
import { ensurePrerequisites, type Requirement } from './prerequisites.ts';
import {
  exitStatusOf,
  isOurs,
  portFree,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tail,
  waitFor,
  writePidFile,
  type PidRecord,
} from './process.ts';
import type { Progress } from './service.ts';

export const DEFAULT_CLUSTER_NAME = 'instabase_cluster';

/** Where `npm run stack -- up --clickhouse-replicas N` keeps the cluster: beside the single server's. */
export function clickhouseClusterDir(cfg: Pick<StackConfig, 'dir'>): string {
  return path.join(cfg.dir, 'clickhouse-cluster');
}

/** `--clickhouse-replicas N`: 0 (the single server) when absent. */
export function replicaCount(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`--clickhouse-replicas ${raw} is not 1 to 9`);
  return n;
}

export interface ClusterPorts {
  zookeeper: number;
  /** Replica i (0-based) listens on base + i. */
  httpBase: number;
  tcpBase: number;
  interserverBase: number;
}

/** Away from the single server's 8123/9000 (and Kafka's 9092+), so both stacks can run side by side. */
export const DEFAULT_CLUSTER_PORTS: ClusterPorts = {
  zookeeper: 2181,
  httpBase: 8131,
  tcpBase: 9031,
  interserverBase: 9041,
};

export interface ClusterOptions {
  /** Where the cluster keeps data, logs and pid files; `down` and `status` look there too. */
  dir: string;
  replicas: number;
  name?: string;
  ports?: Partial<ClusterPorts>;
  healthTimeoutMs?: number;
  progress?: Progress;
}

export interface ReplicaEndpoint {
  /** `zookeeper`, `replica1`, `replica2`, … */
  name: string;
  http?: string;
  tcp: number;
  pidFile: string;
  logFile: string;
  marker: string;
}

/** Debian's ZooKeeper (3.8 on bookworm) runs on the Java 17 the stack already uses for Kafka. */
export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
export const ZOOKEEPER: Requirement = {
  what: 'zookeeper (coordinates the local ClickHouse replicas)',
  apt: ['zookeeper'],
  present: () => fs.existsSync(ZOOKEEPER_JAR),
};

function portsOf(o: ClusterOptions): ClusterPorts {
  return { ...DEFAULT_CLUSTER_PORTS, ...o.ports };
}

/** Names, ports and files of every process of the cluster: ZooKeeper first, then the replicas. */
export function clusterLayout(o: ClusterOptions): ReplicaEndpoint[] {
  const p = portsOf(o);
  const entry = (name: string, marker: string, tcp: number, http?: number): ReplicaEndpoint => ({
    name,
    tcp,
    ...(http === undefined ? {} : { http: `http://${HOST}:${http}` }),
    pidFile: path.join(o.dir, 'run', `${name}.pid`),
    logFile: path.join(o.dir, 'logs', `${name}.log`),
    marker,
  });
  const out = [entry('zookeeper', path.join(o.dir, 'zookeeper', 'zoo.cfg'), p.zookeeper)];
  for (let i = 0; i < o.replicas; i++) {
    const name = `replica${i + 1}`;
    out.push(entry(name, path.join(o.dir, name, 'config.xml'), p.tcpBase + i, p.httpBase + i));
  }
  return out;
}

/** What a replica adds to the single server's config.xml (the <yandex> children, before its end). */
export function clusterXml(o: ClusterOptions, replica: number): string {
  const p = portsOf(o);
  const name = o.name ?? DEFAULT_CLUSTER_NAME;
  const replicas = Array.from(
    { length: o.replicas },
    (_, i) => `        <replica><host>${HOST}</host><port>${p.tcpBase + i}</port></replica>\n`,
  ).join('');
  return `  <interserver_http_host>${HOST}</interserver_http_host>
  <interserver_http_port>${p.interserverBase + replica}</interserver_http_port>
  <remote_servers>
    <${name}>
      <shard>
        <internal_replication>true</internal_replication>
${replicas}      </shard>
    </${name}>
  </remote_servers>
  <zookeeper>
    <node><host>${HOST}</host><port>${p.zookeeper}</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <macros>
    <shard>01</shard>
    <replica>replica${replica + 1}</replica>
  </macros>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
`;
}

/** A standalone ZooKeeper; the AdminServer (an HTTP port, 8080 by default) is not needed. */
export function zooCfg(dataDir: string, port: number): string {
  return `# Generated by stack/clickhouse-cluster.ts on every start; edit that file, not this one.
tickTime=2000
dataDir=${dataDir}
clientPort=${port}
clientPortAddress=${HOST}
admin.enableServer=false
4lw.commands.whitelist=ruok,stat
maxClientCnxns=0
`;
}

async function zookeeperHealthy(port: number): Promise<boolean> {
  // `stat` over the client port. Not `ruok`: its `imok` only means the process runs; a ZooKeeper still
  // loading its data answers it, then drops the handshake of a ClickHouse that starts (which, with
  // replicated tables to attach, exits). `stat` names the Mode only once requests are served.
  const net = await import('node:net');
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let data = '';
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => socket.write('stat'));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(/^Mode: /m.test(data)));
  });
}

async function clickhouseHealthy(http: string): Promise<boolean> {
  try {
    const res = await fetch(`${http}/ping`, { signal: AbortSignal.timeout(3_000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Healthy means serving; for a replica also that it reaches ZooKeeper (system.zookeeper answers). */
export async function endpointHealthy(e: ReplicaEndpoint): Promise<boolean> {
  if (!e.http) return zookeeperHealthy(e.tcp);
  if (!(await clickhouseHealthy(e.http))) return false;
  try {
    const query = encodeURIComponent("SELECT count() FROM system.zookeeper WHERE path = '/'");
    const res = await fetch(`${e.http}/?query=${query}`, { signal: AbortSignal.timeout(3_000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Writes the config files of one process and returns how to start it. */
function prepare(o: ClusterOptions, e: ReplicaEndpoint, index: number) {
  const home = path.dirname(e.marker);
  if (!e.http) {
    const data = path.join(home, 'data');
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(e.marker, zooCfg(data, e.tcp));
    const java = findJava(17);
    return {
      command: java.bin,
      args: [
        '-Xmx256m',
        '-Dzookeeper.admin.enableServer=false',
        '-cp',
        ZOOKEEPER_JAR,
        'org.apache.zookeeper.server.quorum.QuorumPeerMain',
        e.marker,
      ],
      cwd: home,
    };
  }
  for (const d of ['data', 'tmp', 'user_files', 'format_schemas']) {
    fs.mkdirSync(path.join(home, d), { recursive: true });
  }
  const p = portsOf(o);
  // configXml reads only the two ClickHouse ports; the others are not this process's.
  const ports: Ports = {
    kafka: 0,
    kafkaController: 0,
    registry: 0,
    registryManagement: 0,
    clickhouseHttp: p.httpBase + index,
    clickhouseTcp: p.tcpBase + index,
  };
  const base = configXml({ ports }, home, undefined, 'stack/clickhouse-cluster.ts');
  fs.writeFileSync(e.marker, base.replace(/<\/yandex>\s*$/, `${clusterXml(o, index)}</yandex>\n`));
  fs.writeFileSync(
    path.join(home, 'users.xml'),
    usersXml([{ name: 'default' }], 'stack/clickhouse-cluster.ts'),
  );
  const server = findServer();
  return { command: server.command, args: [...server.prefixArgs, `--config-file=${e.marker}`], cwd: home };
}

/**
 * A replica whose pid file outlived it was killed, not stopped (stopMember removes the file). A kill
 * can leave a just-written part that never reached ZooKeeper; when such parts hold more than half of
 * a table's rows (any kill of a replica holding a small table), the replica refuses to start ("the
 * local set of parts … doesn't look like the set of parts in ZooKeeper"). ClickHouse's documented
 * way out is the one-shot flag the server removes after starting: it detaches the unexpected parts
 * (kept under detached/, not deleted) and fetches what the other replicas have. Nothing acknowledged
 * is lost: an insert is acknowledged only after its part is registered in ZooKeeper.
 */
function restoreAfterUncleanStop(e: ReplicaEndpoint, progress: (line: string) => void): void {
  const flags = path.join(path.dirname(e.marker), 'data', 'flags');
  fs.mkdirSync(flags, { recursive: true });
  fs.writeFileSync(path.join(flags, 'force_restore_data'), '');
  progress(`${e.name} was not stopped cleanly: starting it with flags/force_restore_data`);
}

/** Starts one process of the cluster (or finds it running) and waits until it is healthy. */
export async function startMember(o: ClusterOptions, e: ReplicaEndpoint): Promise<boolean> {
  const progress = o.progress ?? (() => undefined);
  const timeoutMs = o.healthTimeoutMs ?? 120_000;
  const existing = readPidFile(e.pidFile);
  if (existing && isOurs(existing)) {
    if ((await waitFor(() => endpointHealthy(e), { timeoutMs, exited: () => !isOurs(existing) })) === 'ok') {
      progress(`${e.name} already running (pid ${existing.pid})`);
      return false;
    }
  }
  if (existing && e.http) restoreAfterUncleanStop(e, progress);
  removePidFile(e.pidFile);
  const ports = e.http ? [e.tcp, Number(new URL(e.http).port)] : [e.tcp];
  for (const port of ports) {
    if (!(await portFree(HOST, port)))
      throw new Error(
        `${e.name}: port ${HOST}:${port} is already in use by a process this stack did not start`,
      );
  }
  const index = Number(e.name.replace('replica', '')) - 1;
  const spec = prepare(o, e, index);
  const proc = spawnDetached({ ...spec, logFile: e.logFile });
  const { pid } = proc;
  const rec: PidRecord = { pid, marker: e.marker, startedAt: new Date().toISOString() };
  writePidFile(e.pidFile, rec);
  const res = await waitFor(() => endpointHealthy(e), { timeoutMs, exited: () => !isOurs(rec) });
  if (res !== 'ok') {
    await stopProcess(rec, 10_000);
    removePidFile(e.pidFile);
    const why =
      res === 'exited'
        ? `exited during startup (${await exitStatusOf(proc)})`
        : `not healthy within ${timeoutMs} ms`;
    throw new Error(`${e.name}: ${why}\n--- last lines of ${e.logFile} ---\n${tail(e.logFile, 30)}`);
  }
  progress(`${e.name} healthy${e.http ? ` at ${e.http}` : ` on ${HOST}:${e.tcp}`} (pid ${pid})`);
  return true;
}

export interface ClusterEnv {
  CLICKHOUSE_URL: string;
  CLICKHOUSE_CLUSTER: string;
}

/**
 * Starts ZooKeeper, then the replicas (at once: each only needs ZooKeeper), and returns the env the
 * sinks use: the first replica's URL (any replica would do; every one has the Distributed tables) and
 * the cluster's name. On failure it stops what it started.
 */
export async function startClickHouseCluster(o: ClusterOptions): Promise<ClusterEnv> {
  if (!Number.isInteger(o.replicas) || o.replicas < 1)
    throw new Error(`replicas ${o.replicas} is not a count`);
  const members = clusterLayout(o);
  const started: ReplicaEndpoint[] = [];
  fs.mkdirSync(path.join(o.dir, 'logs'), { recursive: true });
  await ensurePrerequisites([ZOOKEEPER, CLICKHOUSE_SERVER], {
    progress: o.progress ?? (() => undefined),
    logFile: path.join(o.dir, 'logs', 'apt.log'),
  });
  try {
    const [zk, ...replicas] = members;
    if (await startMember(o, zk!)) started.push(zk!);
    const results = await Promise.allSettled(
      replicas.map(async (r) => {
        if (await startMember(o, r)) started.push(r);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    for (const e of started.reverse()) await stopMember(e);
    throw err;
  }
  return { CLICKHOUSE_URL: members[1]!.http!, CLICKHOUSE_CLUSTER: o.name ?? DEFAULT_CLUSTER_NAME };
}

export async function stopMember(
  e: ReplicaEndpoint,
  graceMs = 30_000,
): Promise<'stopped' | 'killed' | 'not running'> {
  const rec = readPidFile(e.pidFile);
  let result: 'stopped' | 'killed' | 'not running' = 'not running';
  if (rec && isOurs(rec)) {
    const r = await stopProcess(rec, graceMs);
    result = r === 'gone' ? 'not running' : r;
  }
  removePidFile(e.pidFile);
  return result;
}

/** The pid files under `dir` tell which processes exist; replicas first, ZooKeeper last. */
export function existingMembers(dir: string, o: Partial<ClusterOptions> = {}): ReplicaEndpoint[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(dir, 'run')).filter((f) => /^replica\d+\.pid$/.test(f));
  } catch {
    return [];
  }
  if (names.length === 0 && !fs.existsSync(path.join(dir, 'run', 'zookeeper.pid'))) return [];
  const replicas = Math.max(0, ...names.map((n) => Number(/\d+/.exec(n)![0])));
  return clusterLayout({ ...o, dir, replicas });
}

export async function stopClickHouseCluster(
  dir: string,
  progress: Progress = () => undefined,
  o: Partial<ClusterOptions> = {},
): Promise<void> {
  const members = existingMembers(dir, o);
  const [zk, ...replicas] = members;
  await Promise.all(
    replicas.map(async (r) => {
      const res = await stopMember(r);
      if (res !== 'not running') progress(`${r.name} ${res}`);
    }),
  );
  if (zk) {
    const res = await stopMember(zk);
    if (res !== 'not running') progress(`zookeeper ${res}`);
  }
}

export interface MemberStatus {
  name: string;
  endpoint: string;
  pid: number | undefined;
  healthy: boolean;
  logFile: string;
}

export async function clickHouseClusterStatus(
  dir: string,
  o: Partial<ClusterOptions> = {},
): Promise<MemberStatus[]> {
  return Promise.all(
    existingMembers(dir, o).map(async (e) => {
      const rec = readPidFile(e.pidFile);
      const pid = rec && isOurs(rec) ? rec.pid : undefined;
      return {
        name: e.name,
        endpoint: e.http ?? `${HOST}:${e.tcp}`,
        pid,
        healthy: pid !== undefined && (await endpointHealthy(e)),
        logFile: e.logFile,
      };
    }),
  );
}

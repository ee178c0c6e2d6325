/**
 * Throwaway secured servers for the security tests (and for trying production-like settings by hand):
 * a private CA and a server certificate made with openssl, a single-node Kafka whose only client
 * listener is SASL_SSL with SCRAM-SHA-512, and a ClickHouse whose only user has a password and which
 * also serves HTTPS. They run from the stack's own Kafka jars and ClickHouse binary, on free ports, out
 * of a directory the caller owns; the default stack (`npm run stack -- up`) is not touched.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { configXml, findServer, usersXml, type ClickHouseUser } from './clickhouse.ts';
import { HOST, KAFKA_VERSION, loadStackConfig, paths, type StackConfig } from './config.ts';
import { findJava } from './java.ts';
import { kafkaService, LOG4J2 } from './kafka.ts';
import { isOurs, spawnDetached, stopProcess, tail, waitFor, type PidRecord } from './process.ts';
import type { Progress } from './service.ts';

const run = promisify(execFile);

const quiet: Progress = () => undefined;

/** A free TCP port on 127.0.0.1 right now (the OS picks it; a race with another binder is unlikely). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A random password of letters and digits (safe in a properties file, a JAAS string and XML). */
export function randomSecret(bytes = 18): string {
  return randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
}

export interface Pki {
  dir: string;
  /** PEM of the CA: what clients put in KAFKA_SSL_CA_FILE, SCHEMA_REGISTRY_CA_FILE, CLICKHOUSE_CA_FILE. */
  caFile: string;
  /** PEM certificate (signed by the CA, SAN localhost + 127.0.0.1) and its unencrypted PKCS#8 key. */
  certFile: string;
  keyFile: string;
  /** The same certificate and key as PKCS#12, for Java (Kafka). */
  p12File: string;
  p12Password: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')}`,
    );
  }
}

/**
 * A self-signed CA and one server certificate for `localhost` and 127.0.0.1, made with openssl, so
 * that clients can keep hostname verification on. Valid for two days; meant to be made per test run.
 */
export async function makePki(dir: string, hosts = ['localhost'], ips = [HOST]): Promise<Pki> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p12Password = randomSecret();
  const san = [...hosts.map((h) => `DNS:${h}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\n` +
      'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=instabase-stream test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      `/CN=${hosts[0] ?? ips[0]}`,
    ],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'server.ext',
    ],
    dir,
  );
  await openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      'server.crt',
      '-inkey',
      'server.key',
      '-certfile',
      'ca.crt',
      '-name',
      'server',
      '-out',
      'server.p12',
      '-passout',
      `pass:${p12Password}`,
    ],
    dir,
  );
  for (const f of ['ca.key', 'server.key', 'server.p12']) fs.chmodSync(path.join(dir, f), 0o600);
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    certFile: path.join(dir, 'server.crt'),
    keyFile: path.join(dir, 'server.key'),
    p12File: path.join(dir, 'server.p12'),
    p12Password,
  };
}

/** A server this module started: stopped by `stop()`, or killed when the starting process exits. */
export interface ThrowawayServer {
  pid: number;
  logFile: string;
  /** Everything the server wrote to stdout/stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

function track(rec: PidRecord, logFile: string): ThrowawayServer {
  // Last resort when the caller never gets to stop() (a crash, --test-force-exit): no orphan survives.
  const onExit = () => {
    try {
      if (isOurs(rec)) process.kill(-rec.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', onExit);
  return {
    pid: rec.pid,
    logFile,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async stop() {
      await stopProcess(rec, 15_000);
      process.off('exit', onExit);
    },
  };
}

export interface SecureKafkaOptions {
  /** Working directory (properties, data, log); created if missing. */
  dir: string;
  pki: Pki;
  /** SCRAM-SHA-512 users (name → password) created when the storage is formatted. */
  users: Record<string, string>;
  /** The stack's config, for where Kafka's jars are; default loadStackConfig(). */
  stack?: StackConfig;
  port?: number;
  controllerPort?: number;
  timeoutMs?: number;
  progress?: Progress;
}

export interface SecureKafka extends ThrowawayServer {
  /** host:port of the SASL_SSL listener, for KAFKA_BROKERS. */
  brokers: string;
  mechanism: 'SCRAM-SHA-512';
}

/**
 * The properties of a single KRaft node whose broker listener is SASL_SSL (SCRAM-SHA-512), also used
 * between brokers (as the internal `admin` user), and whose controller listener is loopback PLAINTEXT
 * as in the default stack. Passwords in this file stay out of the log: Kafka prints them as [hidden].
 */
export function secureServerProperties(o: {
  port: number;
  controllerPort: number;
  dataDir: string;
  pki: Pki;
  adminPassword: string;
}): string {
  return `# Generated by stack/secure.ts for a throwaway SASL_SSL broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${o.controllerPort}
listeners=SASL_SSL://${HOST}:${o.port},CONTROLLER://${HOST}:${o.controllerPort}
advertised.listeners=SASL_SSL://${HOST}:${o.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${o.adminPassword}";
ssl.keystore.type=PKCS12
ssl.keystore.location=${o.pki.p12File}
ssl.keystore.password=${o.pki.p12Password}
ssl.key.password=${o.pki.p12Password}
ssl.truststore.type=PEM
ssl.truststore.location=${o.pki.caFile}
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
log.dirs=${o.dataDir}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
`;
}

/**
 * Formats storage with the SCRAM users (KRaft keeps them in the metadata log, so they must exist at
 * format time or be added through the admin API later), starts the broker and waits until a SASL_SSL
 * client that trusts only the test CA can describe the cluster.
 */
export async function startSecureKafka(o: SecureKafkaOptions): Promise<SecureKafka> {
  const progress = o.progress ?? quiet;
  const stack = o.stack ?? loadStackConfig();
  await kafkaService.install(stack, progress); // a no-op when the stack already fetched the jars
  const java = findJava(17, 'STACK_KAFKA_JAVA_HOME');
  const port = o.port ?? (await freePort());
  const controllerPort = o.controllerPort ?? (await freePort());
  const dataDir = path.join(o.dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const adminPassword = randomSecret();
  const props = path.join(o.dir, 'server.properties');
  fs.writeFileSync(
    props,
    secureServerProperties({ port, controllerPort, dataDir, pki: o.pki, adminPassword }),
    {
      mode: 0o600,
    },
  );
  fs.writeFileSync(path.join(o.dir, 'log4j2.xml'), LOG4J2);
  const logFile = path.join(o.dir, 'kafka.log');
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(o.dir, 'log4j2.xml')}`,
    '-cp',
    path.join(paths.lib(stack), `kafka-${KAFKA_VERSION}`, '*'),
  ];
  const scram = Object.entries({ admin: adminPassword, ...o.users }).flatMap(([name, password]) => {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || !/^[A-Za-z0-9._~!@#%^*+=-]+$/.test(password)) {
      throw new Error(`SCRAM user ${name}: names and passwords here are limited to [A-Za-z0-9._~!@#%^*+=-]`);
    }
    return ['--add-scram', `SCRAM-SHA-512=[name=${name},password=${password}]`];
  });
  progress(`formatting a SASL_SSL Kafka in ${dataDir}`);
  try {
    const clusterId = randomBytes(16).toString('base64url').replace(/^-/, 'A');
    const { stdout, stderr } = await run(
      java.bin,
      [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, ...scram],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    // Kept with the broker's output, so a search of the log covers the format step too.
    fs.appendFileSync(logFile, stdout + stderr);
  } catch (err) {
    // The command line holds the passwords, so the error's message (which repeats it) is not used.
    const e = err as { stderr?: string; stdout?: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    fs.appendFileSync(logFile, out);
    const why = out.trim().split('\n').slice(-3).join(' ');
    throw new Error(`formatting the SASL_SSL Kafka storage failed: ${why || 'no output'} (see ${logFile})`);
  }

  const { pid } = spawnDetached({
    command: java.bin,
    args: [...jvm, 'kafka.Kafka', props],
    cwd: o.dir,
    logFile,
  });
  const server = track({ pid, marker: props, startedAt: new Date().toISOString() }, logFile);
  const brokers = `${HOST}:${port}`;
  const ca = fs.readFileSync(o.pki.caFile, 'utf8');
  const healthy = async () => {
    const admin = new Kafka({
      clientId: 'secure-stack-health',
      brokers: [brokers],
      ssl: { ca },
      sasl: { mechanism: 'scram-sha-512', username: 'admin', password: adminPassword },
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
    }).admin();
    try {
      await admin.connect();
      return (await admin.describeCluster()).brokers.length > 0;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };
  const res = await waitFor(healthy, {
    timeoutMs: o.timeoutMs ?? 90_000,
    exited: () => !isOurs({ pid, marker: props, startedAt: '' }),
  });
  if (res !== 'ok') {
    await server.stop();
    throw new Error(
      `the SASL_SSL Kafka ${res === 'exited' ? 'exited' : 'did not get healthy'}:\n${tail(logFile, 30)}`,
    );
  }
  progress(`SASL_SSL Kafka (SCRAM-SHA-512) healthy at ${brokers}`);
  return { ...server, brokers, mechanism: 'SCRAM-SHA-512' };
}

export interface SecureClickHouseOptions {
  dir: string;
  pki: Pki;
  /** Users with passwords (stored as SHA-256 in users.xml). */
  users: Required<ClickHouseUser>[];
  timeoutMs?: number;
  progress?: Progress;
}

export interface SecureClickHouse extends ThrowawayServer {
  /** http://127.0.0.1:port */
  httpUrl: string;
  /** https://localhost:port, served with the test CA's certificate */
  httpsUrl: string;
}

/** A ClickHouse with only password-protected users, on HTTP and HTTPS (the PKI's certificate). */
export async function startSecureClickHouse(o: SecureClickHouseOptions): Promise<SecureClickHouse> {
  const progress = o.progress ?? quiet;
  for (const d of ['data', 'tmp', 'user_files', 'format_schemas']) {
    fs.mkdirSync(path.join(o.dir, d), { recursive: true, mode: 0o700 });
  }
  const ports = {
    clickhouseHttp: await freePort(),
    clickhouseTcp: await freePort(),
  };
  const httpsPort = await freePort();
  const config = path.join(o.dir, 'config.xml');
  const generator = 'stack/secure.ts';
  fs.writeFileSync(
    config,
    configXml(
      { ports } as Pick<StackConfig, 'ports'>,
      o.dir,
      {
        httpsPort,
        certFile: o.pki.certFile,
        keyFile: o.pki.keyFile,
      },
      generator,
    ),
  );
  fs.writeFileSync(path.join(o.dir, 'users.xml'), usersXml(o.users, generator), { mode: 0o600 });
  const server = findServer();
  const logFile = path.join(o.dir, 'clickhouse.log');
  const { pid } = spawnDetached({
    command: server.command,
    args: [...server.prefixArgs, `--config-file=${config}`],
    cwd: o.dir,
    logFile,
  });
  const rec = { pid, marker: config, startedAt: new Date().toISOString() };
  const tracked = track(rec, logFile);
  const httpUrl = `http://${HOST}:${ports.clickhouseHttp}`;
  const httpsUrl = `https://localhost:${httpsPort}`;
  const res = await waitFor(
    async () => {
      const r = await fetch(`${httpUrl}/ping`, { signal: AbortSignal.timeout(2_000) });
      return r.status === 200;
    },
    { timeoutMs: o.timeoutMs ?? 60_000, intervalMs: 200, exited: () => !isOurs(rec) },
  );
  if (res !== 'ok') {
    await tracked.stop();
    throw new Error(`the password-protected ClickHouse ${res}:\n${tail(logFile, 30)}`);
  }
  progress(`password-protected ClickHouse at ${httpUrl} and ${httpsUrl}`);
  return { ...tracked, httpUrl, httpsUrl };
}

/**
 * `npm run stack -- secure`: both servers with a fresh CA and random passwords under
 * `.stack/secure/<run>/`, the env vars that reach them printed on stdout, everything stopped and
 * deleted on Ctrl-C. The default stack keeps running untouched (the registry stays plain HTTP).
 */
export async function runSecureStack(stack: StackConfig, progress: Progress): Promise<void> {
  const root = path.join(stack.dir, 'secure');
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'run-'));
  const servers: ThrowawayServer[] = [];
  const cleanup = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
    try {
      fs.rmdirSync(root); // only when no other run is using it
    } catch {
      // another `secure` is running, or the directory is already gone
    }
  };
  try {
    const pki = await makePki(path.join(dir, 'pki'));
    const kafkaPassword = randomSecret();
    const clickhousePassword = randomSecret();
    const secret = (name: string, value: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, value + '\n', { mode: 0o600 });
      return file;
    };
    const kafka = await startSecureKafka({
      dir: path.join(dir, 'kafka'),
      pki,
      users: { alice: kafkaPassword },
      stack,
      progress,
    });
    servers.push(kafka);
    const clickhouse = await startSecureClickHouse({
      dir: path.join(dir, 'clickhouse'),
      pki,
      users: [{ name: 'ingest', password: clickhousePassword }],
      progress,
    });
    servers.push(clickhouse);
    const env = {
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'alice',
      KAFKA_SASL_PASSWORD_FILE: secret('kafka-password', kafkaPassword),
      CLICKHOUSE_URL: clickhouse.httpsUrl,
      CLICKHOUSE_CA_FILE: pki.caFile,
      CLICKHOUSE_USER: 'ingest',
      CLICKHOUSE_PASSWORD_FILE: secret('clickhouse-password', clickhousePassword),
    };
    for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
    progress(`logs: ${kafka.logFile}, ${clickhouse.logFile}; Ctrl-C stops both and deletes ${dir}`);
    // Signal listeners alone do not keep Node's event loop alive; the interval does.
    const keepAlive = setInterval(() => undefined, 60_000);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(keepAlive);
    progress('stopping the secured servers …');
  } finally {
    await cleanup();
  }
}

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import {
  displayPath,
  loadStackConfig,
  paths,
  PORT_FLAGS,
  SERVICES,
  type Ports,
  type ServiceName,
} from './config.ts';
import { tail } from './process.ts';
import { runSecureStack } from './secure.ts';
import { ensureStack, installStack, stackStatus, StackError, stopStack } from './stack.ts';
import { brokerCount, ensureClusterStack, kafkaClusterStatus, stopKafkaCluster } from './kafka-cluster.ts';
import {
  clickHouseClusterStatus,
  clickhouseClusterDir,
  replicaCount,
  startClickHouseCluster,
  stopClickHouseCluster,
} from './clickhouse-cluster.ts';

const USAGE = `usage: npm run stack -- <command> [options]

commands:
  up [service...]       start kafka, registry, clickhouse (or the named ones) and wait until healthy
  install [service...]  only what \`up\` does first: install missing programs (as root, with apt) and fetch
                        the jars from Maven Central; starts nothing
  down [service...]     stop what \`up\` started
  status                pid, endpoint and health of each service (exit 3 unless all are healthy)
  logs [service]        last lines of a service's log (all three when none is named)
  secure                in the foreground until Ctrl-C: a throwaway SASL_SSL Kafka (SCRAM-SHA-512) and a
                        password-protected ClickHouse (HTTP + HTTPS) with a CA made for the run; prints
                        the env vars that reach them (the default stack is not touched)

options:
  --kafka-port N --kafka-controller-port N --registry-port N --registry-management-port N
  --clickhouse-http-port N --clickhouse-tcp-port N      (or STACK_KAFKA_PORT etc., see stack/README.md)
  --brokers N           \`up\`: Kafka as an N-node KRaft cluster (or STACK_KAFKA_BROKERS; default 1, the
                        single node); node i on the Kafka/controller ports + 2i; \`status\` shows it
  --clickhouse-replicas N  \`up\`: ClickHouse as one shard of N replicas (HTTP 8131+i, native 9031+i) with
                        ZooKeeper on 2181, instead of the single server; prints CLICKHOUSE_CLUSTER too
  --timeout SECONDS     how long \`up\` waits for each service to be healthy (default 180)
  -n, --lines N         lines for \`logs\` (default 60)
  -f, --follow          keep following the log

KAFKA_BROKERS, SCHEMA_REGISTRY_URL and CLICKHOUSE_URL, when set, name external services: \`up\` starts
nothing for those.`;

const ALIASES: Record<string, ServiceName> = {
  kafka: 'kafka',
  registry: 'registry',
  'schema-registry': 'registry',
  apicurio: 'registry',
  clickhouse: 'clickhouse',
  ch: 'clickhouse',
};

function serviceArg(name: string): ServiceName {
  const s = ALIASES[name.toLowerCase()];
  if (!s) throw new UsageError(`unknown service "${name}" (expected one of ${SERVICES.join(', ')})`);
  return s;
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const portOptions = Object.fromEntries(
    Object.keys(PORT_FLAGS).map((flag) => [flag.slice(2), { type: 'string' as const }]),
  );
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...portOptions,
      timeout: { type: 'string' },
      brokers: { type: 'string' },
      'clickhouse-replicas': { type: 'string' },
      lines: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return command || values.help ? 0 : 2;
  }

  const ports: Partial<Ports> = {};
  for (const [flag, key] of Object.entries(PORT_FLAGS)) {
    const raw = (values as Record<string, string | boolean | undefined>)[flag.slice(2)];
    if (typeof raw === 'string') {
      const port = Number(raw);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new UsageError(`${flag} ${raw} is not a port`);
      ports[key] = port;
    }
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout) * 1000;
  if (timeout !== undefined && !(timeout > 0))
    throw new UsageError(`--timeout ${values.timeout} is not a positive number`);
  const config = { ports, ...(timeout ? { healthTimeoutMs: timeout } : {}) };
  const services = rest.length > 0 ? rest.map(serviceArg) : undefined;

  switch (command) {
    case 'up': {
      const started = Date.now();
      const brokers = brokerCount(values.brokers);
      // With --clickhouse-replicas the replicas take the single ClickHouse server's place.
      const replicas = replicaCount(values['clickhouse-replicas']);
      const chCluster = replicas > 0 && (services ?? SERVICES).includes('clickhouse');
      const rest = chCluster ? (services ?? [...SERVICES]).filter((s) => s !== 'clickhouse') : services;
      const { started: startedNow, env: stackEnv } =
        brokers > 1
          ? await ensureClusterStack(brokers, { services: rest, config })
          : await ensureStack({ services: rest, config });
      const env: Record<string, string> = { ...stackEnv };
      if (chCluster) {
        const cfg = loadStackConfig(config);
        Object.assign(
          env,
          await startClickHouseCluster({
            dir: clickhouseClusterDir(cfg),
            replicas,
            healthTimeoutMs: cfg.healthTimeoutMs,
            progress: (l) => process.stderr.write(`[stack] ${l}\n`),
          }),
        );
      }
      const took = ((Date.now() - started) / 1000).toFixed(1);
      process.stderr.write(
        `[stack] up in ${took}s${startedNow.length ? ` (started ${startedNow.join(', ')})` : ' (nothing to start)'}\n`,
      );
      for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
      return 0;
    }
    case 'install': {
      const local = await installStack({ services, config });
      process.stderr.write(`[stack] ready to start: ${local.join(', ') || 'nothing (all external)'}\n`);
      return 0;
    }
    case 'down': {
      const results = await stopStack(services ?? SERVICES, { config });
      // Cluster nodes (`up --brokers N`) after the registry, which consumes from them until it exits.
      const nodes = (services ?? SERVICES).includes('kafka')
        ? await stopKafkaCluster(loadStackConfig(config), (l) => process.stderr.write(`[stack] ${l}\n`))
        : [];
      if ((services ?? SERVICES).includes('clickhouse'))
        await stopClickHouseCluster(clickhouseClusterDir(loadStackConfig(config)), (l) =>
          process.stderr.write(`[stack] ${l}\n`),
        );
      if ([...results, ...nodes].every((r) => r.result === 'not running'))
        process.stderr.write('[stack] nothing was running\n');
      return 0;
    }
    case 'status': {
      const rows = await stackStatus({ config });
      const cfg = loadStackConfig(config);
      const nodes = await kafkaClusterStatus(cfg, values.brokers ? brokerCount(values.brokers) : undefined);
      // With a cluster up, its nodes are listed below instead of the single-node kafka.
      for (const r of nodes.length ? rows.filter((x) => x.service !== 'kafka') : rows) {
        const who = r.external ? 'external' : r.pid ? `pid ${r.pid}` : 'not running';
        const log = r.logFile ? `  log ${displayPath(r.logFile)}` : '';
        process.stdout.write(
          `${r.service.padEnd(11)} ${who.padEnd(12)} ${r.endpoint.padEnd(44)} ${r.healthy ? 'healthy' : r.external || r.pid ? 'UNHEALTHY' : 'down'}${log}\n`,
        );
      }
      for (const n of nodes) {
        const who = n.pid ? `pid ${n.pid}` : 'not running';
        process.stdout.write(
          `${`kafka-${n.node.id}`.padEnd(11)} ${who.padEnd(12)} ${`127.0.0.1:${n.node.port}`.padEnd(44)} ${n.healthy ? 'healthy' : n.pid ? 'UNHEALTHY' : 'down'}  log ${displayPath(n.node.logFile)}\n`,
        );
      }
      if (nodes.length)
        process.stdout.write(`KAFKA_BROKERS=${nodes.map((n) => `127.0.0.1:${n.node.port}`).join(',')}\n`);
      const chNodes = await clickHouseClusterStatus(clickhouseClusterDir(cfg));
      for (const n of chNodes) {
        const who = n.pid ? `pid ${n.pid}` : 'not running';
        process.stdout.write(
          `${n.name.padEnd(11)} ${who.padEnd(12)} ${n.endpoint.padEnd(44)} ${n.healthy ? 'healthy' : n.pid ? 'UNHEALTHY' : 'down'}  log ${displayPath(n.logFile)}\n`,
        );
      }
      process.stdout.write(`data: ${cfg.dir}\n`);
      const all = nodes.length ? [...rows.filter((r) => r.service !== 'kafka'), ...nodes] : rows;
      // With the replicas up, the single server is not expected to run.
      const single = chNodes.length
        ? all.filter((r) => !('service' in r) || r.service !== 'clickhouse')
        : all;
      return [...single, ...chNodes].every((r) => r.healthy) ? 0 : 3;
    }
    case 'logs': {
      const cfg = loadStackConfig(config);
      const lines = values.lines ? Number(values.lines) : 60;
      const files = (services ?? SERVICES).map((s) => paths.log(cfg, s)).filter((f) => fs.existsSync(f));
      if (files.length === 0) {
        process.stderr.write(`[stack] no logs yet under ${paths.logs(cfg)}\n`);
        return 1;
      }
      if (values.follow) {
        const child = spawn('tail', ['-n', String(lines), '-F', ...files], { stdio: 'inherit' });
        return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
      }
      for (const f of files) {
        if (files.length > 1) process.stdout.write(`==> ${f} <==\n`);
        process.stdout.write(tail(f, lines) + '\n');
      }
      return 0;
    }
    case 'secure': {
      await runSecureStack(loadStackConfig(config), (line) => process.stderr.write(`[stack] ${line}\n`));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof StackError) {
      process.stderr.write(`[stack] FAILED: ${err.message}\n[stack] full log: ${err.logFile}\n`);
    } else {
      process.stderr.write(`[stack] FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exit(1);
  },
);

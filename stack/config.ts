import path from 'node:path';
import { PACKAGE_ROOT } from '../core/package-root.ts';

/** The three services the local stack runs, in the order `up` starts them. */
export const SERVICES = ['kafka', 'registry', 'clickhouse'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The env var per service that, when set, points at an external service and so keeps `up` from starting ours. */
export const EXTERNAL_ENV: Record<ServiceName, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | 'CLICKHOUSE_URL'> = {
  kafka: 'KAFKA_BROKERS',
  registry: 'SCHEMA_REGISTRY_URL',
  clickhouse: 'CLICKHOUSE_URL',
};

export const KAFKA_VERSION = '4.4.0';
export const APICURIO_VERSION = '3.3.3';
/** The registry on machines without Java 21 (Debian 12 ships 17); see registry.ts. */
export const APICURIO_JAVA17_VERSION = '2.6.13.Final';
export const HOST = '127.0.0.1';

export interface Ports {
  kafka: number;
  kafkaController: number;
  registry: number;
  /** Quarkus serves health/metrics on a second port; its default (9000) collides with ClickHouse native. */
  registryManagement: number;
  clickhouseHttp: number;
  clickhouseTcp: number;
}

export interface StackConfig {
  repoRoot: string;
  /** Everything the stack writes: data, logs, pid files, downloaded jars. Git-ignored. */
  dir: string;
  ports: Ports;
  /** Passed to Maven as -Dmaven.repo.local when set, e.g. to prove a cold fetch. */
  mavenRepoLocal: string | undefined;
  /** How long `up` waits for each service to become healthy. */
  healthTimeoutMs: number;
}

const PORT_ENV: Record<keyof Ports, [string, number]> = {
  kafka: ['STACK_KAFKA_PORT', 9092],
  kafkaController: ['STACK_KAFKA_CONTROLLER_PORT', 9093],
  registry: ['STACK_REGISTRY_PORT', 8081],
  registryManagement: ['STACK_REGISTRY_MANAGEMENT_PORT', 8091],
  clickhouseHttp: ['STACK_CLICKHOUSE_HTTP_PORT', 8123],
  clickhouseTcp: ['STACK_CLICKHOUSE_TCP_PORT', 9000],
};

export const PORT_FLAGS: Record<string, keyof Ports> = {
  '--kafka-port': 'kafka',
  '--kafka-controller-port': 'kafkaController',
  '--registry-port': 'registry',
  '--registry-management-port': 'registryManagement',
  '--clickhouse-http-port': 'clickhouseHttp',
  '--clickhouse-tcp-port': 'clickhouseTcp',
};

export function repoRoot(): string {
  return PACKAGE_ROOT;
}

function parsePort(name: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name}=${raw} is not a TCP port`);
  }
  return port;
}

export interface ConfigOverrides {
  ports?: Partial<Ports>;
  dir?: string;
  healthTimeoutMs?: number;
}

/** Flags beat env vars beat defaults. */
export function loadStackConfig(
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): StackConfig {
  const root = repoRoot();
  const ports = {} as Ports;
  for (const key of Object.keys(PORT_ENV) as (keyof Ports)[]) {
    const [envName, fallback] = PORT_ENV[key];
    const fromEnv = env[envName];
    ports[key] = overrides.ports?.[key] ?? (fromEnv ? parsePort(envName, fromEnv) : fallback);
  }
  const byPort = new Map<number, string>();
  for (const [key, port] of Object.entries(ports)) {
    const other = byPort.get(port);
    if (other) throw new Error(`ports clash: ${other} and ${key} are both ${port}`);
    byPort.set(port, key);
  }
  const timeout = env.STACK_HEALTH_TIMEOUT_MS ? Number(env.STACK_HEALTH_TIMEOUT_MS) : 180_000;
  return {
    repoRoot: root,
    dir: path.resolve(overrides.dir ?? env.STACK_DIR ?? path.join(root, '.stack')),
    ports,
    mavenRepoLocal: env.STACK_MAVEN_REPO_LOCAL || undefined,
    healthTimeoutMs:
      overrides.healthTimeoutMs ?? (Number.isFinite(timeout) && timeout > 0 ? timeout : 180_000),
  };
}

/** A path as a person wants to read it: relative when under the current directory, else absolute. */
export function displayPath(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r === '' || r.startsWith('..') || path.isAbsolute(r) ? p : r;
}

export const paths = {
  logs: (c: StackConfig) => path.join(c.dir, 'logs'),
  log: (c: StackConfig, s: ServiceName) => path.join(c.dir, 'logs', `${s}.log`),
  pidFile: (c: StackConfig, s: ServiceName) => path.join(c.dir, 'run', `${s}.pid`),
  lib: (c: StackConfig) => path.join(c.dir, 'lib'),
  home: (c: StackConfig, s: ServiceName) => path.join(c.dir, s),
};

import { accessSync, constants, readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { nonNegativeInt, positiveInt } from './config-fields.ts';
import { RESOURCE_KNOBS, RESOURCE_NAMES } from './resources.ts';
import { registerBasicAuth, registerSecret } from './secrets.ts';

const resourceName = z.enum(RESOURCE_NAMES);

/** A URL that carries no user or password: credentials would leak wherever the URL is logged. */
const urlWithoutCredentials = (hint: string) =>
  z.url().refine((value) => {
    try {
      const url = new URL(value);
      return url.username === '' && url.password === '';
    } catch {
      return true; // z.url() reports it
    }
  }, `credentials do not belong in the URL (it is logged and shown in errors): ${hint}`);

const kafkaSasl = z.discriminatedUnion('mechanism', [
  z.strictObject({
    mechanism: z
      .enum(['plain', 'scram-sha-256', 'scram-sha-512'])
      .describe('`plain`, `scram-sha-256`, `scram-sha-512` or `oauthbearer`, in any case; unset: no SASL'),
    username: z.string().min(1).describe('PLAIN / SCRAM user'),
    password: z.string().min(1).describe('PLAIN / SCRAM password'),
  }),
  z
    .strictObject({
      mechanism: z.literal('oauthbearer'),
      tokenFile: z
        .string()
        .min(1)
        .optional()
        .describe(
          'OAUTHBEARER: a file holding the token, re-read at every (re)authentication so a sidecar can rotate it',
        ),
      token: z.string().min(1).optional().describe('OAUTHBEARER: a fixed token (or `tokenFile`)'),
    })
    .refine((s) => (s.token === undefined) !== (s.tokenFile === undefined), {
      message: 'OAUTHBEARER needs exactly one of token (KAFKA_SASL_OAUTH_TOKEN) or tokenFile',
    }),
]);

const tlsOptions = z
  .strictObject({
    // The default is false, but loadConfig turns it on when caFile or certFile is given.
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'TLS to the brokers (`true` whenever the listener is `SSL` or `SASL_SSL`; implied by a CA or client certificate file)',
      ),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PEM bundle of a private CA; not needed for publicly trusted brokers (Confluent Cloud, MSK, Redpanda Cloud)',
      ),
    certFile: z
      .string()
      .min(1)
      .optional()
      .describe('client certificate (PEM) for mutual TLS (Aiven), with `keyFile`'),
    keyFile: z.string().min(1).optional().describe('key (PEM) of the client certificate'),
    keyPassword: z.string().min(1).optional().describe('passphrase of an encrypted `keyFile`'),
    rejectUnauthorized: z
      .boolean()
      .default(true)
      .describe('certificate and hostname verification; `false` only for local experiments'),
  })
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'a client certificate needs its key and vice versa: set both certFile and keyFile',
  });

export const configSchema = z.strictObject({
  instabase: z
    .strictObject({
      apiUrl: urlWithoutCredentials('the token goes in INSTABASE_API_TOKEN')
        .default('https://aihub.instabase.com/api')
        .describe('API base URL'),
      token: z.string().min(1).optional().describe('Bearer token; unset: `start` uses the simulator'),
      context: z.string().min(1).optional().describe('`IB-Context` header'),
      timeoutMs: positiveInt.default(30_000).describe('per-request timeout'),
      maxRetries: nonNegativeInt
        .default(6)
        .describe('retries, with full jitter, on network errors, 408, 429 (`Retry-After`) and 5xx'),
      retryBaseMs: positiveInt.default(250).describe('base of the retry backoff'),
      retryMaxMs: positiveInt.default(30_000).describe('cap of the retry backoff'),
      // 0 = unlimited, as the client takes it.
      rps: z.number().min(0).default(20).describe('requests per second across the client (0 = unlimited)'),
      concurrency: positiveInt.default(4).describe('requests in flight at once'),
      maxPagesPerWalk: positiveInt
        .default(100_000)
        .describe(
          "hard cap of one walk; below it a walk may take 4× the pages of its resource's last complete walk (at least 10; 10,000 for batches, runs and a run's results, 100,000 for an audit window), past which it stops, logs and dead-letters, and the next poll may go 4× further",
        ),
    })
    .prefault({}),
  kafka: z
    .strictObject({
      brokers: z
        .array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port'))
        .min(1)
        .default(['127.0.0.1:9092'])
        .describe('bootstrap servers, `host:port` (comma-separated in the env var)'),
      clientId: z
        .string()
        .min(1)
        .default('instabase-stream')
        .describe(
          "Kafka client id, also the prefix of the producers' transactional ids and of the queries consumer group",
        ),
      topicPrefix: z.string().default('instabase.').describe('prefix of every topic'),
      partitions: positiveInt.default(3).describe('partitions of the topics the pipeline creates'),
      replicationFactor: positiveInt
        .default(1)
        .describe('replication factor of the topics the pipeline creates (managed clusters want 3)'),
      auditRetentionMs: positiveInt
        .default(30 * 24 * 3600 * 1000)
        .describe('retention of the append-only audit topic (entity topics are compacted instead)'),
      ssl: tlsOptions.prefault({}),
      sasl: kafkaSasl.optional(),
      connectionTimeoutMs: positiveInt.default(10_000).describe('timeout of a connection to a broker'),
      /**
       * Consumer group timeouts. A member that dies without leaving holds its partitions until the
       * session times out, so this bounds recovery after a crash; heartbeats must come well within it.
       */
      sessionTimeoutMs: z
        .number()
        .int()
        .min(1_000)
        .default(10_000)
        .describe('consumer session timeout: how long a crashed member holds its partitions'),
      heartbeatIntervalMs: positiveInt
        .default(1_000)
        .describe('consumer heartbeat interval, at most a third of `sessionTimeoutMs`'),
      rebalanceTimeoutMs: z
        .number()
        .int()
        .min(1_000)
        .default(20_000)
        .describe('how long a rebalance waits for the members to rejoin'),
      retryMaxMs: positiveInt
        .default(10_000)
        .describe(
          'cap of the backoff while Kafka is unreachable (producers wait and retry, they do not exit)',
        ),
      maxMessageBytes: z
        .number()
        .int()
        .min(65_536)
        .default(1_000_000)
        .describe(
          "largest record (key and value) the producers publish: a larger one is dead-lettered (`record-too-large`) instead of failing its page's transaction at every poll. Topics the pipeline creates take it (`max.message.bytes`, twice it for the state topic); topics made beforehand must too",
        ),
    })
    .refine((k) => k.heartbeatIntervalMs * 3 <= k.sessionTimeoutMs, {
      message: 'heartbeatIntervalMs must be at most a third of sessionTimeoutMs',
      path: ['heartbeatIntervalMs'],
    })
    .prefault({}),
  startup: z
    .strictObject({
      waitMs: nonNegativeInt
        .default(120_000)
        .describe(
          'how long a process waits at start-up for Kafka, the registry and ClickHouse; refused credentials and untrusted certificates fail at once',
        ),
      retryMaxMs: positiveInt.default(5_000).describe('cap of the backoff between attempts while waiting'),
    })
    .prefault({}),
  registry: z
    .strictObject({
      url: urlWithoutCredentials('use SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD')
        .default('http://127.0.0.1:8081/apis/ccompat/v7')
        .describe('a Confluent-compatible registry'),
      username: z
        .string()
        .min(1)
        .optional()
        .describe('HTTP Basic auth user (Confluent Cloud: the Schema Registry API key)'),
      password: z
        .string()
        .min(1)
        .optional()
        .describe('HTTP Basic auth password (Confluent Cloud: the Schema Registry API secret)'),
      bearerToken: z.string().min(1).optional().describe('bearer auth instead of Basic'),
      caFile: z.string().min(1).optional().describe('PEM bundle of a private CA for an `https` registry'),
      compatibility: z
        .enum(['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'])
        .default('BACKWARD_TRANSITIVE')
        .describe('set explicitly on every subject'),
    })
    .refine((r) => (r.username === undefined) === (r.password === undefined), {
      message: 'basic auth needs both username and password (SCHEMA_REGISTRY_USERNAME / _PASSWORD)',
    })
    .refine((r) => !(r.username !== undefined && r.bearerToken !== undefined), {
      message: 'choose basic auth (username/password) or bearerToken, not both',
    })
    .prefault({}),
  clickhouse: z
    .strictObject({
      url: urlWithoutCredentials('use CLICKHOUSE_USER and CLICKHOUSE_PASSWORD')
        .default('http://127.0.0.1:8123')
        .describe('HTTP(S) endpoint; a URL with `user:password@` is refused'),
      user: z.string().min(1).default('default').describe('sent as an HTTP Basic header, never in the URL'),
      password: z.string().default('').describe('password of `user`, sent with it as HTTP Basic'),
      database: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier')
        .default('instabase')
        .describe('database of the tables and views'),
      caFile: z
        .string()
        .min(1)
        .optional()
        .describe('PEM bundle of a private CA for an `https` ClickHouse (ClickHouse Cloud needs none)'),
      requestTimeoutMs: positiveInt.default(60_000).describe('timeout of one request'),
      cluster: z
        .string()
        .min(1)
        .optional()
        .describe(
          'cluster (remote_servers) to create the tables ON: Replicated*MergeTree `<table>_local` plus a Distributed `<table>` sharded by the key; unset: one server',
        ),
      auditTtlDays: positiveInt
        .optional()
        .describe(
          'days after which audit_logs rows expire (TTL), on servers with monthly partitions (20.5+); unset: never',
        ),
    })
    .prefault({}),
  producers: z
    .strictObject({
      resources: z
        .array(resourceName)
        .default([...RESOURCE_NAMES])
        .describe(
          'the resources to poll (a root brings its children: conversations → documents → metadata; batches → files; runs → results)',
        ),
      intervalsMs: z
        .partialRecord(resourceName.meta({ title: 'resource' }), positiveInt)
        .default({})
        .describe('poll interval per root resource; those not listed use `defaultIntervalMs`'),
      defaultIntervalMs: positiveInt
        .default(30_000)
        .describe('poll interval of the resources not in `intervalsMs`'),
      concurrency: positiveInt
        .default(3)
        .describe(
          'polls at once; each poll walks up to 4 × this many children at once, whose requests wait for `instabase.concurrency`',
        ),
      initialLookbackMs: nonNegativeInt
        .default(7 * 24 * 3_600_000)
        .describe('how far back runs and audit logs start on the very first poll'),
      // Page sizes, lookbacks, what to poll: each resource's own, declared with its row.
      ...RESOURCE_KNOBS,
      shutdownTimeoutMs: positiveInt.default(15_000).describe('bound of a graceful stop'),
      stateDir: z
        .string()
        .min(1)
        .optional()
        .describe(
          'where the producers keep their local copy of the cursor state (LevelDB, rebuilt from the state topic at every start); unset: `instabase-stream-state` in the system temp directory',
        ),
      walkKeysInMemory: positiveInt
        .default(5_000)
        .describe(
          'keys one walk of a listing holds in memory to tell what it has seen (~170 B each); past that they go to a scratch LevelDB under `stateDir`, so memory does not grow with the listing',
        ),
      group: z
        .string()
        .min(1)
        .regex(
          /^[A-Za-z0-9._-]+$/,
          'letters, digits, ".", "_" and "-" only (it is part of transactional ids)',
        )
        .optional()
        .describe(
          'producers started with the same group share the resources through a Kafka consumer group and take over those of a member that dies; unset: this instance polls all of `resources`',
        ),
      shards: positiveInt
        .max(64)
        .default(2)
        .describe(
          'in a producers group, units per root with per-parent work (conversations, batches, runs), each following the parents whose id hashes to it; the same on every member',
        ),
    })
    .prefault({}),
  sinks: z
    .strictObject({
      group: z.string().min(1).default('instabase-clickhouse-sink').describe('consumer group'),
      resources: z
        .array(resourceName)
        .default([...RESOURCE_NAMES])
        .describe('the resources whose topics are sunk into ClickHouse'),
      // A buffer is flushed at whichever of the three limits comes first.
      flushRows: positiveInt
        .default(50_000)
        .describe('rows that flush a buffer (or `flushBytes`, `flushMs`)'),
      flushMs: positiveInt
        .default(1_000)
        .describe('age that flushes a buffer (or `flushRows`, `flushBytes`)'),
      flushBytes: positiveInt
        .default(32 * 1024 * 1024)
        .describe('size that flushes a buffer (or `flushRows`, `flushMs`)'),
      retryMaxMs: positiveInt.default(30_000).describe('cap of the backoff while ClickHouse is unreachable'),
      shutdownTimeoutMs: positiveInt.default(15_000).describe('bound of a graceful stop'),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z
        .string()
        .default('127.0.0.1')
        .describe(
          'address of the dashboard, `/metrics` and `/healthz`; another than loopback without `token` logs a warning',
        ),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .default(3000)
        .describe('port of the dashboard, `/metrics` and `/healthz`'),
      token: z
        .string()
        .min(1)
        .optional()
        .describe(
          'when set, the dashboard needs `Authorization: Bearer <token>` or `?token=`; `/metrics` and `/healthz` stay open',
        ),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Secret env vars may instead name a file (`<VAR>_FILE`), as Docker and Kubernetes secrets are mounted. */
function envValue(env: Env, name: string, problems: string[]): string | undefined {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return direct;
  const file = env[`${name}_FILE`];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    problems.push(`${name}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return undefined;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const num = (v: string): number | string => (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);
const bool = (v: string): boolean | string =>
  /^(1|true|yes)$/i.test(v) ? true : /^(0|false|no)$/i.test(v) ? false : v;

/** Environment variable → config path. Names follow CONVENTIONS.md; secrets also accept `_FILE`. */
const ENV_MAP: Array<[string, string, (v: string) => unknown]> = [
  ['INSTABASE_API_URL', 'instabase.apiUrl', String],
  ['INSTABASE_API_TOKEN', 'instabase.token', String],
  ['IB_CONTEXT', 'instabase.context', String],
  ['KAFKA_BROKERS', 'kafka.brokers', list],
  ['KAFKA_CLIENT_ID', 'kafka.clientId', String],
  ['TOPIC_PREFIX', 'kafka.topicPrefix', String],
  ['KAFKA_PARTITIONS', 'kafka.partitions', num],
  ['KAFKA_REPLICATION_FACTOR', 'kafka.replicationFactor', num],
  ['KAFKA_SSL', 'kafka.ssl.enabled', bool],
  ['KAFKA_SSL_CA_FILE', 'kafka.ssl.caFile', String],
  ['KAFKA_SSL_CERT_FILE', 'kafka.ssl.certFile', String],
  ['KAFKA_SSL_KEY_FILE', 'kafka.ssl.keyFile', String],
  ['KAFKA_SSL_KEY_PASSWORD', 'kafka.ssl.keyPassword', String],
  ['KAFKA_SSL_REJECT_UNAUTHORIZED', 'kafka.ssl.rejectUnauthorized', bool],
  ['KAFKA_SASL_MECHANISM', 'kafka.sasl.mechanism', (v) => v.toLowerCase()],
  ['KAFKA_SASL_USERNAME', 'kafka.sasl.username', String],
  ['KAFKA_SASL_PASSWORD', 'kafka.sasl.password', String],
  ['KAFKA_SASL_OAUTH_TOKEN', 'kafka.sasl.token', String],
  ['KAFKA_SASL_OAUTH_TOKEN_FILE_PATH', 'kafka.sasl.tokenFile', String],
  ['KAFKA_SESSION_TIMEOUT_MS', 'kafka.sessionTimeoutMs', num],
  ['KAFKA_HEARTBEAT_INTERVAL_MS', 'kafka.heartbeatIntervalMs', num],
  ['KAFKA_REBALANCE_TIMEOUT_MS', 'kafka.rebalanceTimeoutMs', num],
  ['KAFKA_RETRY_MAX_MS', 'kafka.retryMaxMs', num],
  ['KAFKA_MAX_MESSAGE_BYTES', 'kafka.maxMessageBytes', num],
  ['STARTUP_WAIT_MS', 'startup.waitMs', num],
  ['SCHEMA_REGISTRY_URL', 'registry.url', String],
  ['SCHEMA_REGISTRY_USERNAME', 'registry.username', String],
  ['SCHEMA_REGISTRY_PASSWORD', 'registry.password', String],
  ['SCHEMA_REGISTRY_BEARER_TOKEN', 'registry.bearerToken', String],
  ['SCHEMA_REGISTRY_CA_FILE', 'registry.caFile', String],
  ['CLICKHOUSE_URL', 'clickhouse.url', String],
  ['CLICKHOUSE_USER', 'clickhouse.user', String],
  ['CLICKHOUSE_PASSWORD', 'clickhouse.password', String],
  ['CLICKHOUSE_DATABASE', 'clickhouse.database', String],
  ['CLICKHOUSE_AUDIT_TTL_DAYS', 'clickhouse.auditTtlDays', num],
  ['CLICKHOUSE_CLUSTER', 'clickhouse.cluster', String],
  ['CLICKHOUSE_CA_FILE', 'clickhouse.caFile', String],
  ['PRODUCERS_GROUP', 'producers.group', String],
  ['PRODUCERS_SHARDS', 'producers.shards', num],
  ['SINK_GROUP', 'sinks.group', String],
  ['HTTP_HOST', 'http.host', String],
  ['HTTP_PORT', 'http.port', num],
  ['DASHBOARD_TOKEN', 'http.token', String],
];

/** Every environment variable the config reads (each may also be given as `<NAME>_FILE`). */
export const ENV_VARS: readonly string[] = ENV_MAP.map(([name]) => name);

/** Environment variable and the config path it sets, for the generated README table (core/config-docs.ts). */
export const ENV_PATHS: ReadonlyArray<readonly [env: string, path: string]> = ENV_MAP.map(
  ([name, path]) => [name, path] as const,
);

/** The config paths that hold secrets: registered for redaction and shown as *** in dumps. */
export const SECRET_PATHS = [
  'instabase.token',
  'kafka.sasl.password',
  'kafka.sasl.token',
  'kafka.ssl.keyPassword',
  'registry.password',
  'registry.bearerToken',
  'clickhouse.password',
  'http.token',
];

function readConfigFile(path: string, problems: string[]): Record<string, unknown> {
  try {
    const text = readFileSync(path, 'utf8');
    const parsed: unknown = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${path}: the config file must hold an object`);
      return {};
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    problems.push(`${path}: ${(err as Error).message}`);
    return {};
  }
}

function defaultConfigFile(cwd: string): string | undefined {
  for (const name of [
    'instabase-stream.config.json',
    'instabase-stream.config.yaml',
    'instabase-stream.config.yml',
  ]) {
    const candidate = resolve(cwd, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export interface LoadOptions {
  env?: Env;
  cwd?: string;
  /** Applied after the file and before the environment; used by CLI flags and tests. */
  overrides?: ConfigInput;
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const prev = out[key];
    out[key] =
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

/**
 * File, then overrides, then environment (the environment wins), validated in one pass so that every
 * problem is reported at once.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const filePath = env.INSTABASE_STREAM_CONFIG || defaultConfigFile(options.cwd ?? process.cwd());
  let raw: Record<string, unknown> = filePath ? readConfigFile(filePath, problems) : {};
  raw = deepMerge(raw, (options.overrides ?? {}) as Record<string, unknown>);
  for (const [name, path, convert] of ENV_MAP) {
    const value = envValue(env, name, problems);
    if (value !== undefined && value !== '') setPath(raw, path.split('.'), convert(value));
  }
  normalizeKafkaSecurity(raw);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const where = issue.path.length ? issue.path.join('.') : '(root)';
      problems.push(`${where}: ${issue.message}`);
    }
  }
  if (result.success) problems.push(...unreadableFiles(result.data));
  if (problems.length || !result.success) throw new ConfigError(problems);
  const config = result.data;
  for (const path of SECRET_PATHS) registerSecret(getPath(config, path) as string | undefined);
  // The Basic credentials as they go over the wire, in case a header is ever logged.
  registerBasicAuth(config.registry.username, config.registry.password);
  registerBasicAuth(config.clickhouse.user, config.clickhouse.password);
  return config;
}

/**
 * A CA bundle or client certificate for Kafka means TLS, unless `enabled: false` says otherwise; a SASL
 * mechanism is accepted in any case (`SCRAM-SHA-512` as Kafka's docs write it, in the file as in env).
 */
function normalizeKafkaSecurity(raw: Record<string, unknown>): void {
  const kafka = raw.kafka as { ssl?: Record<string, unknown>; sasl?: Record<string, unknown> } | undefined;
  const ssl = kafka?.ssl;
  if (ssl && typeof ssl === 'object' && ssl.enabled === undefined && (ssl.caFile || ssl.certFile)) {
    ssl.enabled = true;
  }
  const sasl = kafka?.sasl;
  if (sasl && typeof sasl === 'object' && typeof sasl.mechanism === 'string') {
    sasl.mechanism = sasl.mechanism.toLowerCase();
  }
}

/** Certificate files are read when the first connection is made; a wrong path is reported up front. */
function unreadableFiles(config: Config): string[] {
  const files: Array<[string, string | undefined]> = [
    ['kafka.ssl.caFile', config.kafka.ssl.caFile],
    ['kafka.ssl.certFile', config.kafka.ssl.certFile],
    ['kafka.ssl.keyFile', config.kafka.ssl.keyFile],
    ['registry.caFile', config.registry.caFile],
    ['clickhouse.caFile', config.clickhouse.caFile],
  ];
  const problems: string[] = [];
  for (const [path, file] of files) {
    if (!file) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      problems.push(`${path}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return problems;
}

function getPath(obj: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], obj);
}

/** The config with every secret shown as ***, for `--print-config` and start-up logs. */
export function redactedConfig(config: Config): Config {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const path of SECRET_PATHS) {
    if (getPath(copy, path) !== undefined) setPath(copy, path.split('.'), '***');
  }
  return copy as unknown as Config;
}

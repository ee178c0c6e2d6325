import { readFileSync } from 'node:fs';
import {
  Kafka as KafkaClient,
  logLevel,
  type Admin,
  type AdminConfig,
  type Consumer,
  type ConsumerConfig,
  type KafkaConfig,
  type Producer,
  type ProducerConfig,
  type SASLOptions,
  type logCreator,
} from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { errorChain, firstLine, networkFailure, redact, ServiceConnectionError } from './secrets.ts';
import { tlsOptionsFromFiles } from './tls.ts';

const PINO_LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs warnings that say nothing is wrong here, logged at debug instead:
 * - it warns about bounded retries on every idempotent producer, but ours are transactional: a send
 *   that gives up fails its transaction, which is aborted and redone from the committed cursor;
 * - CONCURRENT_TRANSACTIONS is the broker still writing the previous commit's markers: the publisher
 *   waits for that after each commit, and kafkajs retries the rare late one within milliseconds. If its
 *   retries run out, the transaction fails and the publisher says so at warn. Such a retry is harmless
 *   only because the publisher sends to one broker per sendBatch: a send spanning several brokers
 *   was answered this way routinely (their AddPartitionsToTxn raced) and its retry committed records
 *   twice (#16, PartitionRouter in producers/publisher.ts).
 */
function isRoutine(message: string, extra: Record<string, unknown>): boolean {
  if (/^Limiting retries for the idempotent producer/.test(message)) return true;
  return /another concurrent operation on the same transaction was ongoing/.test(
    `${message} ${String(extra['error'] ?? '')}`,
  );
}

/** kafkajs logs through pino so that its lines are structured and scrubbed like ours. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
      if (isRoutine(message, extra)) {
        logger.debug({ kafkajs: extra }, redact(message));
        return;
      }
      // kafkajs logs every rebalance and reconnect at INFO/ERROR; they are routine, so one level down.
      const target = PINO_LEVEL[level] ?? 'info';
      logger[target === 'error' ? 'warn' : target === 'info' ? 'debug' : target](
        { kafkajs: extra },
        redact(message),
      );
    };
}

function saslOptions(sasl: NonNullable<Config['kafka']['sasl']>): SASLOptions {
  if (sasl.mechanism === 'oauthbearer') {
    const { token, tokenFile } = sasl;
    return {
      mechanism: 'oauthbearer',
      // Re-read on each (re)authentication so a rotated token file is picked up without a restart.
      oauthBearerProvider: async () => ({
        value: tokenFile ? readFileSync(tokenFile, 'utf8').trim() : (token ?? ''),
      }),
    };
  }
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

// kafkajs warns on every producer about a partitioner change from 2021; we use its default throughout.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

export function kafkaConfig(config: Config, logger: Logger, clientIdSuffix?: string): KafkaConfig {
  const { kafka } = config;
  return {
    clientId: clientIdSuffix ? `${kafka.clientId}-${clientIdSuffix}` : kafka.clientId,
    brokers: kafka.brokers,
    connectionTimeout: kafka.connectionTimeoutMs,
    ...(kafka.ssl.enabled ? { ssl: tlsOptionsFromFiles(kafka.ssl) } : {}),
    ...(kafka.sasl ? { sasl: saslOptions(kafka.sasl) } : {}),
    logLevel: logLevel.INFO,
    logCreator: pinoLogCreator(logger.child({ component: 'kafkajs' })),
  };
}

/** How the client authenticates, for messages: e.g. "SASL SCRAM-SHA-512 as alice over TLS". */
export function describeKafkaAuth(config: Config): string {
  const { sasl, ssl } = config.kafka;
  const who =
    sasl === undefined
      ? 'no SASL'
      : sasl.mechanism === 'oauthbearer'
        ? 'SASL OAUTHBEARER'
        : `SASL ${sasl.mechanism.toUpperCase()} as ${sasl.username}`;
  return `${who} over ${ssl.enabled ? 'TLS' : 'plaintext'}`;
}

/** Errors that mean no server accepted the connection at all. */
const NOTHING_THERE = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/;

const SECURITY_HINT =
  'KAFKA_SSL and KAFKA_SASL_MECHANISM must match the listener (SASL_SSL needs both, SSL only the first)';

/**
 * Turns whatever kafkajs threw while connecting into an error that names Kafka, the brokers, the
 * authentication in use and the settings to check. Authentication errors are not retried by kafkajs;
 * TLS and connection errors are retried a bounded number of times (its default retry policy) first.
 */
export function kafkaConnectionError(config: Config, err: unknown): Error {
  if (err instanceof ServiceConnectionError) return err;
  const brokers = config.kafka.brokers.join(',');
  const auth = describeKafkaAuth(config);
  const sasl = config.kafka.sasl;
  const chain = errorChain(err);
  const saslError = chain.find((e) => (e as Error)?.name === 'KafkaJSSASLAuthenticationError');
  if (saslError) {
    const check =
      sasl?.mechanism === 'oauthbearer'
        ? 'check the token (KAFKA_SASL_OAUTH_TOKEN or KAFKA_SASL_OAUTH_TOKEN_FILE_PATH)'
        : 'check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD';
    return new ServiceConnectionError(
      'Kafka',
      'auth',
      `Kafka authentication failed (${auth}) at ${brokers}: ${check} (${firstLine(saslError)})`,
      err,
    );
  }
  const closed = chain.some((e) => (e as Error)?.name === 'KafkaJSConnectionClosedError');
  if (closed && !sasl && config.kafka.ssl.enabled) {
    // A SASL_SSL listener answers ApiVersions, then hangs up on the first real request of a client
    // that never authenticated.
    return new ServiceConnectionError(
      'Kafka',
      'auth',
      `Kafka at ${brokers} closed the connection of an unauthenticated client (${auth}): the listener ` +
        'probably requires SASL; set KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
      err,
    );
  }
  const net = networkFailure(err);
  if (net?.kind === 'tls') {
    return new ServiceConnectionError(
      'Kafka',
      'tls',
      `Kafka TLS handshake with ${brokers} failed (${auth}): ${redact(net.detail)}; check KAFKA_SSL_CA_FILE ` +
        `(the CA that signed the broker certificate) and that the broker certificate names the host you connect to; ${SECURITY_HINT}`,
      err,
    );
  }
  const text = chain.map((e) => String((e as Error)?.message ?? e)).join(' | ');
  if (NOTHING_THERE.test(text)) {
    // Nothing listens there (or the name does not resolve): TLS and SASL settings cannot be the cause,
    // so they are not suggested.
    const why = /ENOTFOUND|EAI_AGAIN/.test(text) ? 'the host name does not resolve' : 'connection refused';
    return new ServiceConnectionError(
      'Kafka',
      'unreachable',
      `Kafka unreachable at ${brokers}: ${why} (${net ? redact(net.detail) : firstLine(err)}); ` +
        'is the broker running? check KAFKA_BROKERS',
      err,
    );
  }
  if (
    net?.kind === 'unreachable' ||
    /connection (error|timeout)|closed connection|ECONNREFUSED/i.test(text)
  ) {
    // A reset, a timeout or a hang-up after connecting: a TLS or SASL mismatch with the listener looks
    // exactly like this, so the settings are worth checking.
    return new ServiceConnectionError(
      'Kafka',
      'unreachable',
      `Kafka unreachable at ${brokers} (${auth}): ${net ? redact(net.detail) : firstLine(err)}; check KAFKA_BROKERS; ${SECURITY_HINT}`,
      err,
    );
  }
  return new ServiceConnectionError(
    'Kafka',
    'other',
    `Kafka connection to ${brokers} failed (${auth}): ${firstLine(err)}`,
    err,
  );
}

/** Whether Kafka refused the client's credentials or permissions: waiting does not fix that. */
export function isKafkaAuthError(err: unknown): boolean {
  return errorChain(err).some((e) => {
    const { name, type } = (e ?? {}) as { name?: unknown; type?: unknown };
    return (
      name === 'KafkaJSSASLAuthenticationError' ||
      (typeof type === 'string' && /AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED/.test(type))
    );
  });
}

/**
 * kafkajs errors that say a broker or the coordinator is away for now, though kafkajs marks them not
 * retriable (it gave up on its own retries, or on a lock or a coordinator lookup).
 */
const AWAY = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
]);

/**
 * What a Kafka request made after connecting failed with, for the start-up wait: a broker restarting
 * under a started process resets the connection mid-request (describeConfigs, createTopics,
 * initTransactions), and kafkajs throws that bare, not from `connect`. Such a failure (one kafkajs
 * calls retriable, or one of AWAY) becomes a transient ServiceConnectionError. Anything else (refused
 * permissions, a bad replication factor, a bug) is no outage and comes back as it was, to fail at once.
 * Unlike kafkaConnectionError it does not guess at TLS or SASL settings: those were fine at connect.
 */
export function kafkaFailure(config: Config, err: unknown): unknown {
  if (err instanceof ServiceConnectionError || isKafkaAuthError(err)) return err;
  const away = errorChain(err).some((e) => {
    const { name, retriable } = (e ?? {}) as { name?: unknown; retriable?: unknown };
    return retriable === true || AWAY.has(String(name));
  });
  if (!away) return err;
  return new ServiceConnectionError(
    'Kafka',
    'unreachable',
    `Kafka at ${config.kafka.brokers.join(',')} failed mid-request: ${firstLine(err)}`,
    err,
  );
}

/**
 * Wraps `connect` so failures come out as kafkaConnectionError. `probe` runs right after connecting:
 * kafkajs's connect only exchanges ApiVersions, which a SASL listener answers even for a client that
 * never authenticates, so a missing SASL setting would otherwise show up later as a bare "Closed
 * connection" from whatever request came first.
 */
function guarded<T extends { connect(): Promise<void> }>(
  client: T,
  config: Config,
  probe?: (client: T) => Promise<unknown>,
): T {
  const connect = client.connect.bind(client);
  client.connect = async () => {
    try {
      await connect();
      if (probe) await probe(client);
    } catch (err) {
      throw kafkaConnectionError(config, err);
    }
  };
  return client;
}

/**
 * A kafkajs client whose admins, producers and consumers fail to connect with a
 * ServiceConnectionError (see kafkaConnectionError) instead of kafkajs's bare errors.
 */
export class Kafka extends KafkaClient {
  constructor(
    kafkaConfig: KafkaConfig,
    private readonly config: Config,
  ) {
    super(kafkaConfig);
  }

  override admin(options?: AdminConfig): Admin {
    return guarded(super.admin(options), this.config, (admin) => admin.describeCluster());
  }

  override producer(options?: ProducerConfig): Producer {
    return guarded(super.producer(options), this.config);
  }

  override consumer(options: ConsumerConfig): Consumer {
    return guarded(super.consumer(options), this.config);
  }
}

export function createKafka(config: Config, logger: Logger, clientIdSuffix?: string): Kafka {
  const { sasl, ssl } = config.kafka;
  if (sasl?.mechanism === 'plain' && !ssl.enabled) {
    logger.warn(
      'Kafka SASL PLAIN without TLS sends the password in clear text: set KAFKA_SSL=true unless this is a local test',
    );
  }
  if (ssl.enabled && !ssl.rejectUnauthorized) {
    logger.warn('Kafka TLS certificate verification is off (KAFKA_SSL_REJECT_UNAUTHORIZED=false)');
  }
  return new Kafka(kafkaConfig(config, logger, clientIdSuffix), config);
}

/**
 * The consumer group timeouts every consumer of the pipeline should use (`kafka.sessionTimeoutMs`,
 * `heartbeatIntervalMs`, `rebalanceTimeoutMs`): a member that died without leaving holds its
 * partitions until its session times out, so a short session is what makes recovery after a crash
 * take seconds rather than kafkajs's default 30 s.
 */
export function groupTimeouts(
  config: Config,
): Pick<ConsumerConfig, 'sessionTimeout' | 'heartbeatInterval' | 'rebalanceTimeout'> {
  const { sessionTimeoutMs, heartbeatIntervalMs, rebalanceTimeoutMs } = config.kafka;
  return {
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: heartbeatIntervalMs,
    rebalanceTimeout: rebalanceTimeoutMs,
  };
}

/**
 * One bounded attempt to reach the cluster and authenticate: connect an admin and describe the cluster.
 * Fails with a ServiceConnectionError (see kafkaConnectionError). kafkajs's own retries are kept short
 * here, because the caller (see core/service-wait.ts) decides how long to keep trying.
 */
export async function checkKafka(config: Config, logger: Logger): Promise<number> {
  const kafka = new Kafka(
    {
      ...kafkaConfig(config, logger, 'check'),
      // Each attempt's connection errors would be logged by kafkajs as well as by the waiting caller.
      logLevel: logLevel.NOTHING,
      retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1_000 },
    },
    config,
  );
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length;
  } catch (err) {
    throw kafkaConnectionError(config, err);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

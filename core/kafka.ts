import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions, type logCreator } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { redact } from './secrets.ts';
import { tlsOptionsFromFiles } from './tls.ts';

const PINO_LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs logs through pino so that its lines are structured and scrubbed like ours. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
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

export function createKafka(config: Config, logger: Logger, clientIdSuffix?: string): Kafka {
  return new Kafka(kafkaConfig(config, logger, clientIdSuffix));
}

/**
 * The environment of an `instabase-stream` child process (cli/main.ts) in a test: the endpoints and
 * names of `config`, and nothing of the test's own environment but PATH and HOME.
 */
import os from 'node:os';
import type { Config } from '../../core/config.ts';
import type { Simulator } from '../../sim/index.ts';

export function daemonEnv(config: Config, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    KAFKA_BROKERS: config.kafka.brokers.join(','),
    KAFKA_REPLICATION_FACTOR: String(config.kafka.replicationFactor),
    KAFKA_CLIENT_ID: config.kafka.clientId,
    TOPIC_PREFIX: config.kafka.topicPrefix,
    SCHEMA_REGISTRY_URL: config.registry.url,
    CLICKHOUSE_URL: config.clickhouse.url,
    CLICKHOUSE_USER: config.clickhouse.user,
    CLICKHOUSE_PASSWORD: config.clickhouse.password,
    CLICKHOUSE_DATABASE: config.clickhouse.database,
    ...(config.clickhouse.cluster ? { CLICKHOUSE_CLUSTER: config.clickhouse.cluster } : {}),
    SINK_GROUP: config.sinks.group,
    ...extra,
  };
}

/** Where the producers find the simulator. */
export function simulatorEnv(sim: Simulator): Record<string, string> {
  return { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token };
}

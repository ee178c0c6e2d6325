import type { Config } from '../core/config.ts';
import { createClickHouse } from '../core/clickhouse.ts';
import { createKafka, groupTimeouts } from '../core/kafka.ts';
import { missingSinkNodeFlags } from '../core/node-flags.ts';
import type { Logger } from '../core/log.ts';
import { createRegistry } from '../core/registry.ts';
import { waitForKafka, waitForService, waitForServices } from '../core/service-wait.ts';
import type { ResourceName } from '../core/resources.ts';
import {
  dlqTopicSpec,
  ensureTopicsWith,
  pipelineTopicSpecs,
  resourceTopic,
  sinkDlqTopic,
  topicMessageLimitsWith,
} from '../core/topics.ts';
import { WireDecoder } from './decoder.ts';
import { SinkRunner } from './runner.ts';
import { serverFeatures, withCluster, type ServerFeatures } from './schema/features.ts';
import { TableTarget } from './target.ts';
import { ensureDashboardViews } from './views.ts';

export interface SinkOptions {
  resources?: readonly ResourceName[];
  groupId?: string;
  /** Database to write into (a replay may write into a new one). */
  database?: string;
  /** Table per resource; a replay into a new table names it here. */
  tables?: Partial<Record<ResourceName, string>>;
  /** Read each topic from its beginning when the group has no committed offset (replays, fresh groups). */
  fromBeginning?: boolean;
  onFatal?: (err: Error) => void;
}

export interface RunningSinks {
  runner: SinkRunner;
  targets: TableTarget[];
  stop(): Promise<void>;
}

export async function startSinks(
  config: Config,
  logger: Logger,
  options: SinkOptions = {},
): Promise<RunningSinks> {
  const resources = options.resources ?? config.sinks.resources;
  const database = options.database ?? config.clickhouse.database;
  const missingFlags = missingSinkNodeFlags();
  if (missingFlags.length > 0)
    logger.warn(
      { missing: missingFlags },
      `node was started without ${missingFlags.join(' ')}: after an idle spell, catching up can cost ` +
        `about half as much CPU again per row (core/node-flags.ts; README: "Sinks' CPU and memory")`,
    );
  const kafka = createKafka(config, logger, 'sink');
  // A service that is down at start-up is waited out (bounded by startup.waitMs), saying which and why;
  // refused credentials and untrusted certificates still stop the process at once.
  await waitForServices(config, logger, ['kafka', 'registry', 'clickhouse']);
  await waitForKafka(
    config,
    () =>
      ensureTopicsWith(
        kafka,
        [
          ...pipelineTopicSpecs(config, resources),
          ...resources.map((r) => dlqTopicSpec(config, sinkDlqTopic(config, r))),
        ],
        logger,
      ),
    { waitMs: config.startup.waitMs, retryMaxMs: config.startup.retryMaxMs, logger },
  );
  // What each dead-letter topic takes: one made beforehand may take less than kafka.maxMessageBytes.
  const deadLetterLimits = await waitForKafka(
    config,
    () =>
      topicMessageLimitsWith(
        kafka,
        resources.map((r) => sinkDlqTopic(config, r)),
        logger,
      ),
    { waitMs: config.startup.waitMs, retryMaxMs: config.startup.retryMaxMs, logger },
  );
  const clickhouse = createClickHouse(config);
  const auditTtl = config.clickhouse.auditTtlDays ? { auditTtlDays: config.clickhouse.auditTtlDays } : {};
  // ClickHouse can go away after the probe above too (a restart while Kafka's topics are checked): each
  // step that needs it waits the outage out like the probe, instead of ending the process.
  const clickhouseWait = {
    waitMs: config.startup.waitMs,
    retryMaxMs: config.startup.retryMaxMs,
    logger,
  };
  let features: ServerFeatures;
  try {
    // On a cluster (CLICKHOUSE_CLUSTER) the DDL, the views and the insert settings all follow it.
    features = withCluster(
      await waitForService('ClickHouse', () => serverFeatures(clickhouse), clickhouseWait),
      config.clickhouse.cluster,
    );
    // Dashboard views (sinks/views.ts) before the first insert: the audit materialized view sees only
    // later inserts. Not for a replay into differently named tables, which the views do not read.
    if (Object.entries(options.tables ?? {}).every(([r, t]) => r === t)) {
      const viewOptions = { features, ...auditTtl };
      await waitForService(
        'ClickHouse',
        () => ensureDashboardViews(clickhouse, database, logger, viewOptions),
        clickhouseWait,
      );
    }
  } catch (err) {
    await clickhouse.close();
    throw err;
  }
  const targets = resources.map(
    (resource) =>
      new TableTarget({
        resource,
        topic: resourceTopic(config, resource),
        dlqTopic: sinkDlqTopic(config, resource),
        database,
        ...(options.tables?.[resource] ? { table: options.tables[resource] } : {}),
        clickhouse,
        logger: logger.child({ resource }),
        features,
        ...auditTtl,
      }),
  );
  const runner = new SinkRunner({
    kafka,
    clickhouse,
    decoder: new WireDecoder(createRegistry(config)),
    targets,
    groupId: options.groupId ?? config.sinks.group,
    flushRows: config.sinks.flushRows,
    flushMs: config.sinks.flushMs,
    flushBytes: config.sinks.flushBytes,
    retryMaxMs: config.sinks.retryMaxMs,
    deadLetterLimits,
    groupTimeouts: groupTimeouts(config),
    features,
    fromBeginning: options.fromBeginning ?? true,
    logger,
    ...(options.onFatal ? { onFatal: options.onFatal } : {}),
  });
  // Kafka can also go away between the probes above and the runner's own connections (a broker that
  // restarts resets them): that is waited out like any outage at start-up instead of ending the process.
  await waitForKafka(config, () => runner.start(), {
    waitMs: config.startup.waitMs,
    retryMaxMs: config.startup.retryMaxMs,
    logger,
  });
  logger.info(
    {
      resources,
      database,
      clickhouse: features.version.join('.'),
      group: options.groupId ?? config.sinks.group,
    },
    'sinks started',
  );
  return {
    runner,
    targets,
    async stop() {
      await runner.stop(config.sinks.shutdownTimeoutMs);
      await clickhouse.close();
    },
  };
}

// What the generated DDL and inserts may use on a given ClickHouse server: one table of features with
// the release that brought each, looked up once per client from version(). ClickHouse 18.16 gets none
// of them, so everything there stays as it always was; a current release gets all of them.
//
// Tested: 18.16 (the local stack) and 26.9 (chDB, test/chdb/). The releases in between follow from
// the `since` column; they are not run in CI.
import type { ClickHouseClient } from '@clickhouse/client';
import { serverVersion } from '../../core/clickhouse.ts';

export type Version = readonly [major: number, minor: number];

/** The feature flags DDL and inserts are derived from. */
export interface FeatureFlags {
  /**
   * Every `<col>_dt` column beside a timestamp long is stored, DateTime64(3|9, 'UTC') MATERIALIZED by
   * fromUnixTimestamp64Milli/Nano from the long. The server converts the exact integer, so no value is
   * ever parsed as text and date_time_input_format (best_effort reads 1764140000123 as 9999-12-31)
   * cannot matter. Before: a DateTime ALIAS, whole seconds, computed per read.
   */
  readonly dateTime64: boolean;
  /** LowCardinality(String) for enum-like fields and the envelope (LOW_CARDINALITY_COLUMNS). */
  readonly lowCardinality: boolean;
  /** Bool for Avro booleans (still sent as 1/0, which Bool and UInt8 both take); not for _deleted. */
  readonly bool: boolean;
  /** CODEC(ZSTD(3)) on _raw_json, the widest column. */
  readonly zstdRawJson: boolean;
  /** Append-only resources (audit_logs) partitioned by month of the event, with an optional TTL. */
  readonly monthlyPartitions: boolean;
  /** ReplacingMergeTree(_offset, _deleted): FINAL drops deleted keys, and merges can purge them. */
  readonly replacingIsDeleted: boolean;
  /**
   * insert_deduplication_token on every insert, and the non-replicated deduplication window it needs
   * in CREATE TABLE … SETTINGS (existing tables get it once by ALTER … MODIFY SETTING).
   */
  readonly dedupTokens: boolean;
  /** The server knows async_insert: inserts say async_insert=0 (26.2 made 1 the default). */
  readonly asyncInsertSetting: boolean;
}

export type Feature = keyof FeatureFlags;

export interface ServerFeatures extends FeatureFlags {
  readonly version: Version;
  /** non_replicated_deduplication_window for tables (0: none). */
  readonly dedupWindow: number;
  /**
   * Not a property of the server but of the deployment: the cluster (CLICKHOUSE_CLUSTER) the sinks
   * create their tables ON, with Replicated engines and a Distributed table each. It travels with the
   * features because DDL and insert settings are derived from both; unset means one server.
   */
  readonly cluster?: string;
}

/** The one table: each feature and the first release that has everything it needs. */
export const FEATURE_TABLE: readonly { feature: Feature; since: Version; what: string }[] = [
  {
    feature: 'dateTime64',
    since: [20, 5],
    what: "stored DateTime64(3|9, 'UTC') event-time columns (fromUnixTimestamp64Milli/Nano: 20.5)",
  },
  { feature: 'lowCardinality', since: [19, 1], what: 'LowCardinality(String) for enum-like columns' },
  { feature: 'bool', since: [21, 12], what: 'Bool for booleans' },
  { feature: 'zstdRawJson', since: [19, 1], what: 'CODEC(ZSTD(3)) on _raw_json' },
  {
    feature: 'monthlyPartitions',
    since: [20, 5],
    what: 'audit_logs PARTITION BY toYYYYMM(event time), optional TTL (needs the DateTime64 columns)',
  },
  { feature: 'replacingIsDeleted', since: [23, 2], what: 'ReplacingMergeTree(_offset, _deleted)' },
  {
    feature: 'dedupTokens',
    since: [22, 2],
    what: 'insert_deduplication_token, non_replicated_deduplication_window in CREATE TABLE',
  },
  { feature: 'asyncInsertSetting', since: [21, 11], what: 'async_insert=0 sent with every insert' },
];

/** The deduplication window set on tables where tokens are used: the last 1000 inserts per table. */
export const DEDUP_WINDOW = 1_000;

export function atLeast(version: Version, since: Version): boolean {
  return version[0] > since[0] || (version[0] === since[0] && version[1] >= since[1]);
}

/** The features for a cluster: a cluster's tables are replicated, and replicated tables need no
 * non-replicated deduplication window (they keep replicated_deduplication_window's block hashes). */
export function withCluster(features: ServerFeatures, cluster: string | undefined): ServerFeatures {
  if (cluster === undefined) return features;
  return { ...features, cluster, dedupWindow: 0 };
}

export function featuresFor(version: Version): ServerFeatures {
  const flags = Object.fromEntries(
    FEATURE_TABLE.map(({ feature, since }) => [feature, atLeast(version, since)]),
  ) as unknown as FeatureFlags;
  return { ...flags, version, dedupWindow: flags.dedupTokens ? DEDUP_WINDOW : 0 };
}

/** What the sinks did before version-adaptive DDL, and still do on 18.16: the default everywhere. */
export const LEGACY_FEATURES: ServerFeatures = featuresFor([18, 16]);

const byClient = new WeakMap<object, Promise<ServerFeatures>>();

/**
 * The features of the server behind a client, from one `SELECT version()` per client (later calls
 * reuse it, so the sinks' targets and the dashboard views agree). A failed lookup is not cached.
 */
export function serverFeatures(client: Pick<ClickHouseClient, 'query'>): Promise<ServerFeatures> {
  let found = byClient.get(client);
  if (!found) {
    // serverVersion uses only query() (and the config remembered for the client, for its errors).
    found = serverVersion(client as ClickHouseClient).then(featuresFor);
    byClient.set(client, found);
    found.catch(() => byClient.delete(client));
  }
  return found;
}

/**
 * The settings of one insert. The token makes a retried insert of the same rows a no-op (the table's
 * deduplication window remembers it); async_insert=0 keeps the insert synchronous, so that the token
 * applies on the ordinary insert path and the insert has landed when the call returns.
 */
export function insertSettings(
  features: ServerFeatures,
  token: string | undefined,
): Record<string, string> | undefined {
  const settings: Record<string, string> = {};
  if (features.dedupTokens && token !== undefined) settings.insert_deduplication_token = token;
  if (features.asyncInsertSetting) settings.async_insert = '0';
  // Inserts go through the Distributed table. By default it queues them on the initiator's disk and
  // sends them later, so a committed Kafka offset could cover rows no replica holds yet; synchronous,
  // the call returns once every shard's replica has the block (and its deduplication hash).
  if (features.cluster !== undefined) settings.insert_distributed_sync = '1';
  return Object.keys(settings).length ? settings : undefined;
}

// Dashboard views: what the built-in dashboard page (cli/dashboard/), the Grafana dashboard and any other
// BI tool read. They live beside the tables in the configured database and are created by the sinks at
// start-up, right after the tables (see ensureDashboardViews), with statements that run on ClickHouse
// 18.16 and on current releases alike (only the resource tables made here follow the server's
// features, as the sinks' own tables do):
// - no DateTime64, Map, JSON, LowCardinality, query parameters, CREATE OR REPLACE, DROP VIEW (a view is
//   dropped with DROP TABLE), WITH FILL, window functions or toStartOfInterval;
// - joins are `ANY LEFT JOIN (subquery) AS alias USING (...)`, the form 18.16 knows; the alias is
//   required since joined_subquery_requires_alias became 1 by default (20.x), and 18.16 accepts it;
// - the materialized view writes into its own table (`TO`), so that dropping or recreating it never
//   loses the aggregated data, and reading needs no knowledge of the hidden `.inner.` table.
//
// Plain views versus a materialized view. A materialized view runs its SELECT on each block *inserted*
// into its source table and never sees a merge, a later version of the same key or a delete. That is
// right only for append-only data: the audit log. Runs, results and fields are entities whose rows are
// superseded (a run goes RUNNING → COMPLETE, a result is re-fetched): a materialized view would count
// every version, so their views are plain views over the `<table>_current` views (FINAL, not deleted),
// computed when read. Those tables are small (thousands to a few million rows); the audit log is the one
// that grows without bound and whose per-minute aggregation pays off.
import type { ClickHouseClient } from '@clickhouse/client';
import { unansweredFailure } from '../core/clickhouse.ts';
import type { Logger } from '../core/log.ts';
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { valueSchema } from '../schemas/index.ts';
import { createStatements, localTableName, replicationPath } from './schema/ddl.ts';
import { serverFeatures, type ServerFeatures } from './schema/features.ts';
import { deriveLayout } from './schema/layout.ts';
import { qualifiedName, quoteIdentifier, quoteString } from './schema/sql.ts';

export type DashboardObjectKind = 'view' | 'table' | 'materialized view';

export interface DashboardObject {
  readonly name: string;
  readonly kind: DashboardObjectKind;
  /** Column names as system.columns lists them (for a materialized view with TO: its SELECT's). */
  readonly columns: readonly string[];
  /** What it is for, for the docs and the report of `ensureDashboardViews`. */
  readonly doc: string;
  /** CREATE … IF NOT EXISTS, database-qualified. */
  readonly create: string;
  /** On a cluster, what `create` needs first (the replicated table behind a Distributed one). */
  readonly before?: readonly string[];
  /** Other dashboard objects it reads or writes into: it is not attempted when one of them failed. */
  readonly dependsOn: readonly string[];
  /** The resources whose tables it reads: it is not attempted when their tables could not be made. */
  readonly reads: readonly ResourceName[];
}

/** Runs by status per minute of the run's start (the fetch time when the API gave no start). */
export const RUNS_BY_STATUS = 'dash_runs_by_status';
/** Audit events per minute, log_type and user (email): a view over the aggregate table. */
export const AUDIT_PER_MINUTE = 'dash_audit_events_per_minute';
/** The AggregatingMergeTree the materialized view fills; read it through AUDIT_PER_MINUTE. */
export const AUDIT_PER_MINUTE_STATE = 'dash_audit_events_per_minute_state';
/** The materialized view from audit_logs into AUDIT_PER_MINUTE_STATE. */
export const AUDIT_PER_MINUTE_MV = 'dash_audit_events_per_minute_mv';
/** Extraction fields per field name and document class: count, errors, error rate, mean confidence. */
export const FIELD_STATS = 'dash_field_stats';
/** Per resource: rows, the newest _fetched_at, now() minus it, and rows ingested in the last minute. */
export const PIPELINE_FRESHNESS = 'dash_pipeline_freshness';

const q = quoteIdentifier;

/**
 * On a cluster (CLICKHOUSE_CLUSTER) every object is created ON CLUSTER and reads the Distributed
 * resource tables, through the `_current` views over them, so each view shows the cluster's data.
 * The one object holding data, the audit aggregate, is then a replicated `<state>_local` per shard
 * (filled by the materialized view on the local audit table, which fires on the server an insert
 * lands on and not again when a replica fetches the part) and a Distributed `<state>` to read.
 */
function on(cluster: string | undefined): string {
  return cluster === undefined ? '' : ` ON CLUSTER ${q(cluster)}`;
}

/** `toDateTime(intDiv(col, 1000))` for a millisecond epoch, as layout.ts spells its `_dt` aliases. */
function fromMillis(expression: string): string {
  return `toDateTime(intDiv(${expression}, 1000))`;
}

function runsByStatus(db: string, cluster?: string): DashboardObject {
  // start_timestamp is in nanoseconds; its `start_timestamp_dt` alias is part of runs_current.
  const select =
    `SELECT toStartOfMinute(ifNull(${q('start_timestamp_dt')}, ${q('_fetched_at_dt')})) AS ${q('minute')}, ` +
    `ifNull(${q('status')}, 'UNKNOWN') AS ${q('status')}, count() AS ${q('runs')} ` +
    `FROM ${qualifiedName(db, 'runs_current')} ` +
    `GROUP BY ${q('minute')}, ${q('status')}`;
  return {
    name: RUNS_BY_STATUS,
    kind: 'view',
    columns: ['minute', 'status', 'runs'],
    doc: 'current runs per start minute and status (from runs_current)',
    create: `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, RUNS_BY_STATUS)}${on(cluster)} AS ${select}`,
    dependsOn: [],
    reads: ['runs'],
  };
}

/**
 * The audit aggregate. `uniqState(_content_hash)`, not a count: the sinks deliver at least once (a batch
 * retried after a failed commit is inserted again), and the materialized view sees every insert, while
 * audit_logs itself deduplicates by _content_hash only when it merges. Counting distinct hashes makes a
 * redelivered event count once. `uniq` keeps every (32-bit) hash until a state holds 65,536 of them and
 * samples beyond, within about 1%: per minute, log type and user, exact in practice. The view sums
 * the merged states, so a per-minute total is exact as long as each event has one log type and user.
 */
const AUDIT_MINUTE = `toStartOfMinute(${fromMillis(`ifNull(${q('timestamp_ms')}, ${q('_fetched_at')})`)})`;

const AUDIT_STATE_COLUMNS =
  `  ${q('minute')} DateTime,\n  ${q('log_type')} String,\n  ${q('email')} String,\n` +
  `  ${q('events')} AggregateFunction(uniq, String)\n`;

function auditState(db: string, cluster?: string): DashboardObject {
  const base = {
    name: AUDIT_PER_MINUTE_STATE,
    kind: 'table',
    columns: ['minute', 'log_type', 'email', 'events'],
    doc: 'AggregatingMergeTree filled by the materialized view; events is uniqState(_content_hash)',
    dependsOn: [],
    reads: [],
  } as const;
  const orderBy = `ORDER BY (${q('minute')}, ${q('log_type')}, ${q('email')})`;
  if (cluster === undefined) {
    return {
      ...base,
      create:
        `CREATE TABLE IF NOT EXISTS ${qualifiedName(db, AUDIT_PER_MINUTE_STATE)} (\n${AUDIT_STATE_COLUMNS})\n` +
        `ENGINE = AggregatingMergeTree()\n${orderBy}`,
    };
  }
  const local = localTableName(AUDIT_PER_MINUTE_STATE);
  const zkPath = quoteString(replicationPath(db, local));
  // Any shard may hold states of any minute: the view merges them (uniqMerge), so rand() spreads them.
  const args = [cluster, db, local].map(quoteString).join(', ');
  return {
    ...base,
    before: [
      `CREATE TABLE IF NOT EXISTS ${qualifiedName(db, local)}${on(cluster)} (\n${AUDIT_STATE_COLUMNS})\n` +
        `ENGINE = ReplicatedAggregatingMergeTree(${zkPath}, '{replica}')\n${orderBy}`,
    ],
    create:
      `CREATE TABLE IF NOT EXISTS ${qualifiedName(db, AUDIT_PER_MINUTE_STATE)}${on(cluster)} (\n${AUDIT_STATE_COLUMNS})\n` +
      `ENGINE = Distributed(${args}, rand())`,
  };
}

/**
 * The SELECT the materialized view runs per inserted block; also the backfill of existing rows. `from`:
 * the table it reads (on a cluster the materialized view reads the local replicated table).
 */
export function auditAggregateSelect(db: string, from = 'audit_logs'): string {
  return (
    `SELECT ${AUDIT_MINUTE} AS ${q('minute')}, ifNull(${q('log_type')}, '') AS ${q('log_type')}, ` +
    `ifNull(${q('email')}, '') AS ${q('email')}, uniqState(${q('_content_hash')}) AS ${q('events')} ` +
    `FROM ${qualifiedName(db, from)} WHERE ${q('_deleted')} = 0 ` +
    `GROUP BY ${q('minute')}, ${q('log_type')}, ${q('email')}`
  );
}

function auditMaterializedView(db: string, cluster?: string): DashboardObject {
  const into = cluster === undefined ? AUDIT_PER_MINUTE_STATE : localTableName(AUDIT_PER_MINUTE_STATE);
  const from = cluster === undefined ? 'audit_logs' : localTableName('audit_logs');
  return {
    name: AUDIT_PER_MINUTE_MV,
    kind: 'materialized view',
    columns: ['minute', 'log_type', 'email', 'events'],
    doc: `materialized view: each insert into audit_logs → ${AUDIT_PER_MINUTE_STATE}`,
    create:
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualifiedName(db, AUDIT_PER_MINUTE_MV)}${on(cluster)} ` +
      `TO ${qualifiedName(db, into)} AS ${auditAggregateSelect(db, from)}`,
    dependsOn: [AUDIT_PER_MINUTE_STATE],
    reads: ['audit_logs'],
  };
}

function auditPerMinute(db: string, cluster?: string): DashboardObject {
  return {
    name: AUDIT_PER_MINUTE,
    kind: 'view',
    columns: ['minute', 'log_type', 'email', 'events'],
    doc: 'audit events per minute, log_type and user (email), each event counted once',
    create:
      `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, AUDIT_PER_MINUTE)}${on(cluster)} AS ` +
      `SELECT ${q('minute')}, ${q('log_type')}, ${q('email')}, uniqMerge(${q('events')}) AS ${q('events')} ` +
      `FROM ${qualifiedName(db, AUDIT_PER_MINUTE_STATE)} ` +
      `GROUP BY ${q('minute')}, ${q('log_type')}, ${q('email')}`,
    dependsOn: [AUDIT_PER_MINUTE_STATE],
    reads: [],
  };
}

/**
 * Fields of the current results, with the class of their document. The class lives on runs_results;
 * the join is by the child table's copy of the parent key. The joined subquery is named (`doc`):
 * current servers refuse an unnamed one (joined_subquery_requires_alias, ALIAS_REQUIRED), 18.16
 * accepts the name. Inner aliases differ from the column names
 * they are computed from: 18.16 reports an alias that shadows a column of the same query as cyclic.
 * Conditions go through ifNull so that the counts are UInt64, not Nullable (18.16's countIf of a
 * Nullable condition is Nullable).
 */
function fieldStats(db: string, cluster?: string): DashboardObject {
  const key = ['run_id', 'file_index', 'document_index'].map(q).join(', ');
  const classes =
    `SELECT ${key}, ifNull(${q('class_name')}, '') AS ${q('doc_class')} ` +
    `FROM ${qualifiedName(db, 'runs_results_current')}`;
  const select =
    `SELECT ifNull(${q('name')}, '') AS ${q('field_name')}, ${q('doc_class')} AS ${q('class_name')}, ` +
    `count() AS ${q('fields')}, ` +
    `countIf(ifNull(${q('error')}, '') != '') AS ${q('errors')}, ` +
    `${q('errors')} / ${q('fields')} AS ${q('error_rate')}, ` +
    `countIf(ifNull(${q('valid')}, 1) = 0) AS ${q('invalid')}, ` +
    `count(${q('confidence')}) AS ${q('scored')}, ` +
    `avg(${q('confidence')}) AS ${q('mean_confidence')} ` +
    `FROM ${qualifiedName(db, 'runs_results_fields_current')} ` +
    `ANY LEFT JOIN (${classes}) AS ${q('doc')} USING (${key}) ` +
    `GROUP BY ${q('field_name')}, ${q('class_name')}`;
  return {
    name: FIELD_STATS,
    kind: 'view',
    columns: [
      'field_name',
      'class_name',
      'fields',
      'errors',
      'error_rate',
      'invalid',
      'scored',
      'mean_confidence',
    ],
    doc:
      'current extraction fields per field name and class: fields, errors (non-empty error), error_rate, ' +
      'invalid (validation failed), scored (with a confidence), mean_confidence',
    create: `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, FIELD_STATS)}${on(cluster)} AS ${select}`,
    dependsOn: [],
    reads: ['runs_results'],
  };
}

/**
 * One row per resource, over the raw tables (what the sinks wrote, before deduplication, the way
 * `instabase-stream status` counts rows). freshness_seconds is NULL while a table is empty.
 */
function pipelineFreshness(
  db: string,
  resources: readonly ResourceName[],
  cluster?: string,
): DashboardObject {
  const branch = (resource: ResourceName) =>
    `SELECT ${quoteString(resource)} AS ${q('resource')}, count() AS ${q('rows')}, ` +
    `if(count() = 0, NULL, ${fromMillis(`max(${q('_fetched_at')})`)}) AS ${q('newest_fetched_at')}, ` +
    `if(count() = 0, NULL, toInt64(now()) - intDiv(max(${q('_fetched_at')}), 1000)) AS ${q('freshness_seconds')}, ` +
    `countIf(${q('_ingested_at')} > now() - 60) AS ${q('rows_last_minute')}, ` +
    `if(count() = 0, NULL, max(${q('_ingested_at')})) AS ${q('newest_ingested_at')} ` +
    `FROM ${qualifiedName(db, resource)}`;
  return {
    name: PIPELINE_FRESHNESS,
    kind: 'view',
    columns: [
      'resource',
      'rows',
      'newest_fetched_at',
      'freshness_seconds',
      'rows_last_minute',
      'newest_ingested_at',
    ],
    doc:
      'per resource: rows, newest_fetched_at, freshness_seconds (now() minus it), rows_last_minute ' +
      '(ingested in the last 60 s), newest_ingested_at',
    create:
      `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, PIPELINE_FRESHNESS)}${on(cluster)} AS ` +
      resources.map(branch).join(' UNION ALL '),
    dependsOn: [],
    reads: resources,
  };
}

/** Every dashboard object of a database, in creation order (the aggregate table before its view). */
export function dashboardObjects(database: string, cluster?: string): DashboardObject[] {
  return [
    runsByStatus(database, cluster),
    auditState(database, cluster),
    auditMaterializedView(database, cluster),
    auditPerMinute(database, cluster),
    fieldStats(database, cluster),
    pipelineFreshness(database, RESOURCE_NAMES, cluster),
  ];
}

/** DROP TABLE, because 18.16 has no DROP VIEW. */
export function dropStatement(database: string, name: string, cluster?: string): string {
  return `DROP TABLE IF EXISTS ${qualifiedName(database, name)}${on(cluster)}`;
}

type Client = Pick<ClickHouseClient, 'command' | 'query'>;

async function existingColumns(client: Client, database: string): Promise<Map<string, string[]>> {
  const rs = await client.query({
    query: `SELECT table, name FROM system.columns WHERE database = ${quoteString(database)}`,
    format: 'JSONEachRow',
  });
  const out = new Map<string, string[]>();
  for (const row of await rs.json<{ table: string; name: string }>()) {
    out.set(row.table, [...(out.get(row.table) ?? []), row.name]);
  }
  return out;
}

async function existingTables(client: Client, database: string): Promise<Set<string>> {
  const rs = await client.query({
    query: `SELECT name FROM system.tables WHERE database = ${quoteString(database)}`,
    format: 'JSONEachRow',
  });
  return new Set((await rs.json<{ name: string }>()).map((r) => r.name));
}

/** Something createDashboardViews could not create, and what it therefore did not attempt. */
export interface DashboardFailure {
  /** A dashboard object, `tables of <resource>`, or AUDIT_BACKFILL. */
  readonly name: string;
  /** The server's error, first line. */
  readonly error: string;
  /** Dashboard objects (and the backfill) not attempted because they need it. */
  readonly dependents: readonly string[];
}

export interface DashboardViewsResult {
  /** The statements that ran, in order. */
  readonly ran: string[];
  /** Empty when everything exists. */
  readonly failed: DashboardFailure[];
}

/** The one-off aggregation of audit rows present before the aggregate table, as failures name it. */
export const AUDIT_BACKFILL = `${AUDIT_PER_MINUTE_STATE} backfill`;

const tablesStep = (resource: ResourceName) => `tables of ${resource}`;

function firstLineOf(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}

/**
 * Creates the dashboard views of a database. Idempotent, and safe to run from several sinks at once:
 * everything is CREATE … IF NOT EXISTS. A statement that fails does not stop the others: every object
 * that does not need the failed one is still created, and the result names each failure and what was
 * not attempted because of it (one server refusing one view must not cost the whole dashboard).
 *
 * 1. The resource tables and their `_current` views, from the local schemas, when missing. The sinks
 *    otherwise create a table on its first record, and a view cannot be created over a table that does
 *    not exist yet; more importantly the materialized view must exist *before* the first audit_logs
 *    insert, because it only ever sees rows inserted after it was created. Existing tables are not
 *    touched: the sinks still bring them in line with each writer schema (ALTER … ADD COLUMN). The
 *    local schemas are the ones the producers register, so a table made here is the table the first
 *    record would have made; only a producer older than these sinks (a writer schema lacking a field
 *    the local one has) would now meet a table with a column its schema lacks, which planAlter refuses
 *    as it refuses any removed field.
 * 2. The views. A plain view whose columns differ from this version's is dropped and recreated (a view
 *    fixes its column list when created); the aggregate table and its materialized view are never
 *    dropped here, since they hold data.
 * 3. When this call created the aggregate table, the audit rows already present (a database from before
 *    the dashboard views, or rows inserted in the moment between the table and the view) are
 *    aggregated into it once. Counting distinct content hashes, an event the materialized view also saw
 *    still counts once.
 *
 * A server that does not answer (unreachable, reset, timed out) is thrown as a ServiceConnectionError
 * at the first statement it fails, whatever the statement: only the server's own refusals are
 * collected in `failed`.
 */
export interface DashboardViewsOptions {
  /** The server's features, for the resource tables made here; looked up from version() when absent. */
  readonly features?: ServerFeatures;
  /** As the sinks' TableTarget has it, so that an audit_logs table made here is the one they would make. */
  readonly auditTtlDays?: number;
}

export async function createDashboardViews(
  client: Client,
  database: string,
  options: DashboardViewsOptions = {},
): Promise<DashboardViewsResult> {
  const ran: string[] = [];
  const failed: DashboardFailure[] = [];
  const failedNames = new Set<string>();
  const features = options.features ?? (await serverFeatures(client));
  const cluster = features.cluster;
  const objects = dashboardObjects(database, cluster);
  /** Everything downstream of a failed step, transitively, in creation order. */
  const dependentsOf = (name: string): string[] => {
    const out: string[] = [];
    const down = new Set([name]);
    for (const o of objects) {
      if (o.dependsOn.some((d) => down.has(d)) || o.reads.some((r) => down.has(tablesStep(r)))) {
        down.add(o.name);
        out.push(o.name);
      }
    }
    // The backfill writes into the aggregate table from audit_logs.
    if (down.has(AUDIT_PER_MINUTE_STATE) || name === tablesStep('audit_logs')) out.push(AUDIT_BACKFILL);
    return out;
  };
  const attempt = async (name: string, statements: readonly string[]): Promise<boolean> => {
    try {
      for (const query of statements) {
        await client.command({ query });
        ran.push(query);
      }
      return true;
    } catch (err) {
      // The server went away: the rest of this pass would fail alike and record the dashboard as
      // missing. Thrown, so that the caller can wait for the server and run the pass again.
      const down = unansweredFailure(client, err);
      if (down) throw down;
      const dependents = dependentsOf(name);
      failed.push({ name, error: firstLineOf(err), dependents });
      failedNames.add(name);
      for (const d of dependents) failedNames.add(d);
      return false;
    }
  };

  const tablesBefore = await existingTables(client, database);
  for (const resource of RESOURCE_NAMES) {
    const layout = deriveLayout(resource, valueSchema(resource), {
      database,
      features,
      ...(options.auditTtlDays ? { ttlDays: options.auditTtlDays } : {}),
    });
    const tables = [layout.table.name, ...layout.children.map((c) => c.name)];
    const names = [
      ...tables,
      // On a cluster the replicated tables too: nothing then runs ON CLUSTER when all is there.
      ...(cluster === undefined ? [] : tables.map(localTableName)),
      ...layout.views.map((v) => v.name),
    ];
    if (names.every((n) => tablesBefore.has(n))) continue;
    await attempt(tablesStep(resource), createStatements(layout));
  }
  const columns = await existingColumns(client, database);
  for (const object of objects) {
    if (failedNames.has(object.name)) continue;
    const current = columns.get(object.name);
    const statements: string[] = [];
    if (object.kind === 'view' && current && !sameNames(current, object.columns)) {
      statements.push(dropStatement(database, object.name, cluster));
    } else if (current || (object.kind === 'materialized view' && tablesBefore.has(object.name))) {
      continue;
    }
    statements.push(...(object.before ?? []), object.create);
    await attempt(object.name, statements);
  }
  if (!tablesBefore.has(AUDIT_PER_MINUTE_STATE) && !failedNames.has(AUDIT_BACKFILL)) {
    await attempt(AUDIT_BACKFILL, [
      `INSERT INTO ${qualifiedName(database, AUDIT_PER_MINUTE_STATE)} ` +
        `(${['minute', 'log_type', 'email', 'events'].map(q).join(', ')}) ${auditAggregateSelect(database)}`,
    ]);
  }
  return { ran, failed };
}

/**
 * createDashboardViews for the sinks: the server's refusals are logged, not thrown, one warning per
 * failed object naming what it kept from being created. The dashboard is secondary to loading the
 * tables, and a server that refuses one of these statements must not stop the pipeline. True when
 * nothing failed. A server that does not answer is thrown (ServiceConnectionError), so that start-up
 * waits for it and runs this again rather than go on without views: the materialized view must exist
 * before the first audit insert it should count.
 */
export async function ensureDashboardViews(
  client: Client,
  database: string,
  logger: Pick<Logger, 'info' | 'warn'>,
  options: DashboardViewsOptions = {},
): Promise<boolean> {
  let result: DashboardViewsResult;
  try {
    result = await createDashboardViews(client, database, options);
  } catch (err) {
    const down = unansweredFailure(client, err);
    if (down) throw down;
    logger.warn({ err, database }, 'could not create the dashboard views; the sinks run without them');
    return false;
  }
  if (result.ran.length) logger.info({ database, statements: result.ran.length }, 'dashboard views created');
  for (const f of result.failed) {
    logger.warn(
      { database, object: f.name, error: f.error, notAttempted: f.dependents },
      `could not create dashboard object ${f.name}` +
        (f.dependents.length ? `, so neither ${f.dependents.join(', ')}` : '') +
        '; the sinks run without them',
    );
  }
  return result.failed.length === 0;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((n) => set.has(n));
}

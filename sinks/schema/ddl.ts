// DDL for a resource layout. The statement forms parse on ClickHouse 18.16 and on current releases:
// `ENGINE = ReplacingMergeTree(ver) ORDER BY …` (custom partitioning syntax, 18.16 has it), ALIAS
// columns, CREATE VIEW IF NOT EXISTS. Not used because 18.16 lacks them: CREATE OR REPLACE VIEW,
// DROP VIEW, ADD COLUMN IF NOT EXISTS. What a newer server adds (ReplacingMergeTree's is_deleted
// argument, PARTITION BY and TTL on stored DateTime64 columns, codecs, table SETTINGS) comes from the
// layout, which carries the server's features (features.ts); with LEGACY_FEATURES none of it appears.
import { createHash } from 'node:crypto';
import {
  DELETED_COLUMN,
  type ResourceLayout,
  type TableLayout,
  type ViewLayout,
  type Column,
} from './layout.ts';
import { qualifiedName, quoteIdentifier, quoteString } from './sql.ts';
import { normalizeClickHouseType } from './types.ts';

/** A row of system.columns (name, type, default_kind), the same on 18.16 and current releases. */
export interface ExistingColumn {
  readonly name: string;
  readonly type: string;
  /** '' for ordinary columns, else DEFAULT, MATERIALIZED, ALIAS (EPHEMERAL on new releases). */
  readonly default_kind: string;
}

/** A change to an existing table that ADD COLUMN cannot express. The sink stops and commits nothing. */
export class IncompatibleTableError extends Error {
  constructor(
    readonly table: string,
    readonly column: string,
    /** Type in the existing table. */
    readonly oldType: string,
    /** Type derived from the schema; null when the schema no longer has the column. */
    readonly newType: string | null,
  ) {
    super(
      newType === null
        ? `table ${table}: column ${column} (${oldType}) is no longer in the schema; removing fields is not allowed`
        : `table ${table}: column ${column} is ${oldType} but the schema now needs ${newType}; retyping is not allowed`,
    );
    this.name = 'IncompatibleTableError';
  }
}

// On a cluster (CLICKHOUSE_CLUSTER), each table of a layout is two: `<table>_local`, a
// Replicated*MergeTree on every server, and `<table>`, a Distributed table over them on every server.
// The sinks insert into `<table>` and everything reads `<table>`, so row mapping, inserts and the views
// keep their names. The sharding key is cityHash64 of the resource's key (for a child table: the parent
// key it copies), so that every version of an entity and all items of a parent land on one shard:
// FINAL (which the Distributed table runs per shard) then sees every version of a key together, and
// a retried flush sends the same rows to the same shard, where the replicated engine drops the
// repeated block. With one shard the key only decides nothing; it is there for when a shard is added.
// Every statement is ON CLUSTER, so it runs on every server (for ALTERs of a Replicated table the
// change itself also goes through ZooKeeper/Keeper). The statements are the same on every release: they
// run on an 18.16 cluster (test/integration/clickhouse-cluster.test.ts), and on 26.9, which has no Keeper
// here, they parse and what needs no Keeper runs (test/integration/cluster-ddl-current.test.ts).

/** The replicated table behind the Distributed `<table>` on a cluster. */
export function localTableName(table: string): string {
  return `${table}_local`;
}

function onCluster(cluster: string | undefined): string {
  return cluster === undefined ? '' : ` ON CLUSTER ${quoteIdentifier(cluster)}`;
}

/** Where a replicated table keeps its state in ZooKeeper/Keeper: per shard, per database and table. */
export function replicationPath(database: string, table: string): string {
  return `/clickhouse/tables/{shard}/${database}/${table}`;
}

export function createDatabaseStatement(database: string, cluster?: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}${onCluster(cluster)}`;
}

function columnDefinition(c: Column, withCodec = true): string {
  const def = `${quoteIdentifier(c.name)} ${c.type}`;
  const codec = c.codec && withCodec ? ` ${c.codec}` : '';
  if (c.source === 'alias') return `${def} ALIAS ${c.expression}`;
  if (c.source === 'materialized') return `${def} MATERIALIZED ${c.expression}${codec}`;
  return (c.expression ? `${def} DEFAULT ${c.expression}` : def) + codec;
}

/**
 * CREATE TABLE for one table of a layout. With a cluster: the replicated `<table>_local` (see
 * distributedTableStatement for the table the sinks use); the ReplacingMergeTree arguments (version,
 * is_deleted where the server has it) follow the ZooKeeper path and replica name.
 */
export function createTableStatement(database: string, table: TableLayout, cluster?: string): string {
  const columns = table.columns.map((c) => `  ${columnDefinition(c)}`).join(',\n');
  const orderBy = table.orderBy.map(quoteIdentifier).join(', ');
  const name = cluster === undefined ? table.name : localTableName(table.name);
  const engineArgs = [
    ...(cluster === undefined
      ? []
      : [quoteString(replicationPath(database, name)), quoteString('{replica}')]),
    ...[table.version, ...(table.isDeleted ? [table.isDeleted] : [])].map(quoteIdentifier),
  ];
  const engine = cluster === undefined ? 'ReplacingMergeTree' : 'ReplicatedReplacingMergeTree';
  const settings = Object.entries(table.settings ?? {}).map(([k, v]) => `${k} = ${v}`);
  return (
    `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, name)}${onCluster(cluster)} (\n${columns}\n)\n` +
    `ENGINE = ${engine}(${engineArgs.join(', ')})\n` +
    (table.partitionBy ? `PARTITION BY ${table.partitionBy}\n` : '') +
    `ORDER BY (${orderBy})` +
    (table.ttl ? `\nTTL ${table.ttl}` : '') +
    (settings.length ? `\nSETTINGS ${settings.join(', ')}` : '')
  );
}

/**
 * The Distributed `<table>` over `<table>_local` on every server of the cluster, sharded by the
 * resource key (`shardKey`: the main table's ORDER BY, which child tables copy). Its columns are the
 * local table's without codecs (a Distributed table stores nothing); MATERIALIZED and ALIAS columns keep
 * their expressions, so reads see them and inserts leave them to the shards.
 */
export function distributedTableStatement(
  database: string,
  table: TableLayout,
  cluster: string,
  shardKey: readonly string[],
  /** Another name for it (a replacement being swapped in); it still reads `<table.name>_local`. */
  name = table.name,
): string {
  const columns = table.columns.map((c) => `  ${columnDefinition(c, false)}`).join(',\n');
  const args = [cluster, database, localTableName(table.name)].map(quoteString);
  return (
    `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, name)}${onCluster(cluster)} (\n${columns}\n)\n` +
    `ENGINE = Distributed(${args.join(', ')}, cityHash64(${shardKey.map(quoteIdentifier).join(', ')}))`
  );
}

/**
 * Brings a Distributed table to new columns. 18.16 refuses `ALTER … ON CLUSTER` of a table that is not
 * replicated when the cluster's shards are (internal_replication), and a Distributed table holds no
 * data: so a new one is created under a temporary name, swapped in with one RENAME and the old one
 * dropped, everything ON CLUSTER, as views are replaced (replaceViewStatements), and with no moment
 * in which inserts find no table. The temporary names follow from the column list, so a retry after a
 * crash reuses them.
 */
export function replaceDistributedStatements(
  database: string,
  table: TableLayout,
  cluster: string,
  shardKey: readonly string[],
): string[] {
  const tag = createHash('sha1')
    .update(table.columns.map((c) => c.name).join(','))
    .digest('hex')
    .slice(0, 8);
  const fresh = qualifiedName(database, `${table.name}__new_${tag}`);
  const old = qualifiedName(database, `${table.name}__old_${tag}`);
  const on = onCluster(cluster);
  return [
    distributedTableStatement(database, table, cluster, shardKey, `${table.name}__new_${tag}`),
    `RENAME TABLE ${qualifiedName(database, table.name)} TO ${old}, ${fresh} TO ${qualifiedName(database, table.name)}${on}`,
    `DROP TABLE IF EXISTS ${old}${on}`,
  ];
}

/**
 * The current-state view: the latest version per key (FINAL), without deleted entities. For a child
 * table: the items of the parents' current versions, so items a newer version dropped disappear too.
 * The filter is a WHERE, applied after FINAL's merge on 18.16 and on current releases
 * (optimize_move_to_prewhere_if_final defaults to 0); a PREWHERE would filter before it and resurrect
 * the version before a delete.
 */
export function createViewStatement(layout: ResourceLayout, view: ViewLayout): string {
  const db = layout.database;
  const select = view.columns.map(quoteIdentifier).join(', ');
  const from = `${qualifiedName(db, view.table)} FINAL`;
  const parent = layout.table;
  const cluster = layout.features.cluster;
  let where: string;
  if (view.table === parent.name) {
    where = `${quoteIdentifier(DELETED_COLUMN)} = 0`;
  } else {
    const key = [...parent.orderBy, parent.version].map(quoteIdentifier).join(', ');
    // On a cluster both tables are Distributed: a plain IN would make every shard run the subquery
    // over the whole cluster again (refused as a double-distributed subquery by default); GLOBAL IN
    // runs it once, cluster-wide, and ships the set of current parent versions to the shards.
    const inOp = cluster === undefined ? 'IN' : 'GLOBAL IN';
    where =
      `(${key}) ${inOp} (SELECT ${key} FROM ${qualifiedName(db, parent.name)} FINAL ` +
      `WHERE ${quoteIdentifier(DELETED_COLUMN)} = 0)`;
  }
  return `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, view.name)}${onCluster(cluster)} AS SELECT ${select} FROM ${from} WHERE ${where}`;
}

/**
 * Replaces a view without a moment in which it is missing (a dashboard query then fails with
 * UNKNOWN_TABLE): the new definition under a temporary name, one RENAME that swaps the two (ClickHouse
 * renames the tables of one statement under a lock, 18.16 included), then DROP of the old definition.
 * 18.16 has neither CREATE OR REPLACE VIEW nor EXCHANGE TABLES. The temporary names follow from the
 * new column list, so that a retry after a crash reuses them.
 */
export function replaceViewStatements(layout: ResourceLayout, view: ViewLayout): string[] {
  const tag = createHash('sha1').update(view.columns.join(',')).digest('hex').slice(0, 8);
  const fresh: ViewLayout = { ...view, name: `${view.name}__new_${tag}` };
  const db = layout.database;
  const old = qualifiedName(db, `${view.name}__old_${tag}`);
  const on = onCluster(layout.features.cluster);
  return [
    createViewStatement(layout, fresh),
    `RENAME TABLE ${qualifiedName(db, view.name)} TO ${old}, ${qualifiedName(db, fresh.name)} TO ${qualifiedName(db, view.name)}${on}`,
    `DROP TABLE IF EXISTS ${old}${on}`,
  ];
}

/** ALIAS or MATERIALIZED (columns inserts never write), else '' (DEFAULT counts as ordinary). */
function computedKind(kind: string): string {
  return kind === 'ALIAS' || kind === 'MATERIALIZED' ? kind : '';
}

/** CREATE TABLE for one table of a layout: one statement, or on a cluster the local and the Distributed. */
export function createTableStatements(layout: ResourceLayout, table: TableLayout): string[] {
  const cluster = layout.features.cluster;
  if (cluster === undefined) return [createTableStatement(layout.database, table)];
  return [
    createTableStatement(layout.database, table, cluster),
    distributedTableStatement(layout.database, table, cluster, layout.table.orderBy),
  ];
}

/** Everything needed for a fresh database: database, tables, views. All idempotent. */
export function createStatements(layout: ResourceLayout): string[] {
  return [
    createDatabaseStatement(layout.database, layout.features.cluster),
    ...[layout.table, ...layout.children].flatMap((t) => createTableStatements(layout, t)),
    ...layout.views.map((v) => createViewStatement(layout, v)),
  ];
}

/**
 * ALTER TABLE … ADD COLUMN for every derived column the existing table lacks, in layout order (so an
 * ALIAS comes after the column it reads). Throws IncompatibleTableError when a column changed type or
 * kind, or when an ordinary column is no longer derived. Columns someone added with a DEFAULT,
 * MATERIALIZED or ALIAS expression are left alone: inserts never need them.
 */
export function planAlter(
  database: string,
  table: TableLayout,
  existing: readonly ExistingColumn[],
  /**
   * On a cluster: which of the two tables the existing columns are of (`_local` or the Distributed),
   * and the ALTERs run ON CLUSTER; a Distributed table's new columns get no codec, as when created.
   */
  on?: { cluster: string; distributed: boolean },
): string[] {
  const name = on && !on.distributed ? localTableName(table.name) : table.name;
  const byName = new Map(existing.map((c) => [c.name, c]));
  const derivedNames = new Set(table.columns.map((c) => c.name));
  for (const c of existing) {
    if (!derivedNames.has(c.name) && c.default_kind === '') {
      throw new IncompatibleTableError(table.name, c.name, c.type, null);
    }
  }
  const statements: string[] = [];
  for (const c of table.columns) {
    const old = byName.get(c.name);
    if (!old) {
      statements.push(
        `ALTER TABLE ${qualifiedName(database, name)}${onCluster(on?.cluster)} ADD COLUMN ` +
          columnDefinition(c, !on?.distributed),
      );
      continue;
    }
    const sameKind = computedKind(old.default_kind) === computedKind(c.source.toUpperCase());
    if (!sameKind || normalizeClickHouseType(old.type) !== normalizeClickHouseType(c.type)) {
      const kind = (k: string) => (computedKind(k) ? ` ${computedKind(k)}` : '');
      throw new IncompatibleTableError(
        table.name,
        c.name,
        old.type + kind(old.default_kind),
        c.type + kind(c.source.toUpperCase()),
      );
    }
  }
  return statements;
}

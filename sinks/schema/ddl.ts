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
import { qualifiedName, quoteIdentifier } from './sql.ts';
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

export function createDatabaseStatement(database: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}`;
}

function columnDefinition(c: Column): string {
  const def = `${quoteIdentifier(c.name)} ${c.type}`;
  const codec = c.codec ? ` ${c.codec}` : '';
  if (c.source === 'alias') return `${def} ALIAS ${c.expression}`;
  if (c.source === 'materialized') return `${def} MATERIALIZED ${c.expression}${codec}`;
  return (c.expression ? `${def} DEFAULT ${c.expression}` : def) + codec;
}

export function createTableStatement(database: string, table: TableLayout): string {
  const columns = table.columns.map((c) => `  ${columnDefinition(c)}`).join(',\n');
  const orderBy = table.orderBy.map(quoteIdentifier).join(', ');
  const engineArgs = [table.version, ...(table.isDeleted ? [table.isDeleted] : [])].map(quoteIdentifier);
  const settings = Object.entries(table.settings ?? {}).map(([k, v]) => `${k} = ${v}`);
  return (
    `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, table.name)} (\n${columns}\n)\n` +
    `ENGINE = ReplacingMergeTree(${engineArgs.join(', ')})\n` +
    (table.partitionBy ? `PARTITION BY ${table.partitionBy}\n` : '') +
    `ORDER BY (${orderBy})` +
    (table.ttl ? `\nTTL ${table.ttl}` : '') +
    (settings.length ? `\nSETTINGS ${settings.join(', ')}` : '')
  );
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
  let where: string;
  if (view.table === parent.name) {
    where = `${quoteIdentifier(DELETED_COLUMN)} = 0`;
  } else {
    const key = [...parent.orderBy, parent.version].map(quoteIdentifier).join(', ');
    where =
      `(${key}) IN (SELECT ${key} FROM ${qualifiedName(db, parent.name)} FINAL ` +
      `WHERE ${quoteIdentifier(DELETED_COLUMN)} = 0)`;
  }
  return `CREATE VIEW IF NOT EXISTS ${qualifiedName(db, view.name)} AS SELECT ${select} FROM ${from} WHERE ${where}`;
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
  return [
    createViewStatement(layout, fresh),
    `RENAME TABLE ${qualifiedName(db, view.name)} TO ${old}, ${qualifiedName(db, fresh.name)} TO ${qualifiedName(db, view.name)}`,
    `DROP TABLE IF EXISTS ${old}`,
  ];
}

/** ALIAS or MATERIALIZED (columns inserts never write), else '' (DEFAULT counts as ordinary). */
function computedKind(kind: string): string {
  return kind === 'ALIAS' || kind === 'MATERIALIZED' ? kind : '';
}

/** Everything needed for a fresh database: database, tables, views. All idempotent. */
export function createStatements(layout: ResourceLayout): string[] {
  return [
    createDatabaseStatement(layout.database),
    ...[layout.table, ...layout.children].map((t) => createTableStatement(layout.database, t)),
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
): string[] {
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
      statements.push(`ALTER TABLE ${qualifiedName(database, table.name)} ADD COLUMN ${columnDefinition(c)}`);
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

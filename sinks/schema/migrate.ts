// Brings a database in line with a resource layout: creates what is missing, adds new columns, and
// replaces a view whose columns no longer match (a ClickHouse view fixes its column list when it is
// created, on 18.16 and on current releases, so a view of an altered table has to be recreated; it is
// swapped in with a RENAME, so that dashboards reading it never find it missing).
//
// Tables that exist are kept as they were created. A table made before the DDL followed the server's
// version (or on 18.16) keeps its ALIAS DateTime `_dt` columns, and new ones it gets are ALIAS too;
// its engine, partitioning and codecs stay as they are (ClickHouse cannot change an engine in place;
// a replay into a new table gets the new DDL). New columns take the server's types (Bool,
// LowCardinality), which inserts fill the same way. Where dedup tokens are used, an existing table
// without the deduplication window gets it once (ALTER … MODIFY SETTING); new tables have it in CREATE.
import type { ClickHouseClient } from '@clickhouse/client';
import {
  createDatabaseStatement,
  createTableStatements,
  createViewStatement,
  localTableName,
  planAlter,
  replaceDistributedStatements,
  replaceViewStatements,
  type ExistingColumn,
} from './ddl.ts';
import { withAliasEventTimes, type ResourceLayout, type TableLayout } from './layout.ts';
import { qualifiedName, quoteString } from './sql.ts';

type Client = Pick<ClickHouseClient, 'command' | 'query'>;

async function existingColumns(client: Client, database: string): Promise<Map<string, ExistingColumn[]>> {
  const rs = await client.query({
    query:
      'SELECT table, name, type, default_kind FROM system.columns ' +
      `WHERE database = ${quoteString(database)}`,
    format: 'JSONEachRow',
  });
  const byTable = new Map<string, ExistingColumn[]>();
  for (const row of await rs.json<ExistingColumn & { table: string }>()) {
    const list = byTable.get(row.table) ?? [];
    list.push({ name: row.name, type: row.type, default_kind: row.default_kind });
    byTable.set(row.table, list);
  }
  return byTable;
}

const DEDUP_SETTING = 'non_replicated_deduplication_window';

/** The layout of an existing table as it was created: with ALIAS `_dt` columns if it has them. */
function asCreated(table: TableLayout, existing: readonly ExistingColumn[] | undefined): TableLayout {
  if (!existing) return table;
  const kinds = new Map(existing.map((c) => [c.name, c.default_kind]));
  const aliased = table.columns.some((c) => c.timeOf && kinds.get(c.name) === 'ALIAS');
  return aliased ? withAliasEventTimes(table) : table;
}

async function tablesWithoutDedupWindow(client: Client, database: string): Promise<Set<string>> {
  const rs = await client.query({
    query: `SELECT name, engine_full FROM system.tables WHERE database = ${quoteString(database)}`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ name: string; engine_full: string }>();
  return new Set(rows.filter((r) => !r.engine_full.includes(DEDUP_SETTING)).map((r) => r.name));
}

async function databaseExists(client: Client, database: string): Promise<boolean> {
  const rs = await client.query({
    query: `SELECT name FROM system.databases WHERE name = ${quoteString(database)}`,
    format: 'JSONEachRow',
  });
  return (await rs.json()).length > 0;
}

/**
 * The cluster path. Each table is `<table>_local` (replicated) plus the Distributed `<table>`; both
 * are checked against their own columns, so that a migration cut short between the two is finished by
 * the next run. The local table gets ALTER … ADD COLUMN ON CLUSTER (replicated through ZooKeeper); the
 * Distributed one is replaced (replaceDistributedStatements says why). Nothing runs ON CLUSTER when it already exists here: an ON CLUSTER
 * statement waits for every server, and a sink restarting while one replica is down must still start.
 */
async function applyClusterSchema(
  client: Client,
  layout: ResourceLayout,
  cluster: string,
  run: (query: string) => Promise<void>,
): Promise<void> {
  if (!(await databaseExists(client, layout.database)))
    await run(createDatabaseStatement(layout.database, cluster));
  let columns = await existingColumns(client, layout.database);
  for (const t of [layout.table, ...layout.children]) {
    const localCols = columns.get(localTableName(t.name));
    const table = asCreated(t, localCols);
    const plans = [
      { existing: localCols, distributed: false },
      { existing: columns.get(t.name), distributed: true },
    ].map((p) => ({
      ...p,
      alters: p.existing
        ? planAlter(layout.database, table, p.existing, { cluster, distributed: p.distributed })
        : [],
    }));
    if (!localCols || !columns.has(t.name)) {
      // CREATE … IF NOT EXISTS: the one that exists is left as it is.
      for (const statement of createTableStatements(layout, table)) await run(statement);
    }
    for (const { distributed, alters } of plans) {
      if (distributed && alters.length) {
        try {
          for (const statement of replaceDistributedStatements(
            layout.database,
            table,
            cluster,
            layout.table.orderBy,
          ))
            await run(statement);
        } catch (err) {
          // Another sink may have swapped it in meanwhile.
          columns = await existingColumns(client, layout.database);
          const now = columns.get(t.name) ?? [];
          if (planAlter(layout.database, table, now, { cluster, distributed }).length) throw err;
        }
        continue;
      }
      for (const alter of alters) {
        try {
          await run(alter);
        } catch (err) {
          columns = await existingColumns(client, layout.database);
          const now = columns.get(distributed ? t.name : localTableName(t.name)) ?? [];
          if (planAlter(layout.database, table, now, { cluster, distributed }).includes(alter)) throw err;
        }
      }
    }
  }
}

/**
 * Returns the statements it ran. Throws IncompatibleTableError (from planAlter) before changing
 * anything when a column was retyped or removed. Safe to run concurrently from several sinks: a column
 * another sink added in the meantime is found on the re-read after the failed ALTER.
 */
export async function applySchema(client: Client, layout: ResourceLayout): Promise<string[]> {
  const ran: string[] = [];
  const run = async (query: string): Promise<void> => {
    await client.command({ query });
    ran.push(query);
  };
  const cluster = layout.features.cluster;
  if (cluster !== undefined) {
    await applyClusterSchema(client, layout, cluster, run);
    await applyViews(client, layout, run);
    return ran;
  }
  await run(createDatabaseStatement(layout.database));
  const tables = [layout.table, ...layout.children];

  let columns = await existingColumns(client, layout.database);
  const plans = tables.map((t) => {
    const table = asCreated(t, columns.get(t.name));
    return { table, alters: planAlter(layout.database, table, columns.get(t.name) ?? []) };
  });
  const existed = new Set(plans.filter((p) => columns.has(p.table.name)).map((p) => p.table.name));
  for (const { table, alters } of plans) {
    if (!existed.has(table.name)) {
      for (const statement of createTableStatements(layout, table)) await run(statement);
      continue;
    }
    for (const alter of alters) {
      try {
        await run(alter);
      } catch (err) {
        columns = await existingColumns(client, layout.database);
        if (planAlter(layout.database, table, columns.get(table.name) ?? []).includes(alter)) throw err;
      }
    }
  }

  const window = layout.features.dedupWindow;
  if (window && existed.size) {
    const missing = await tablesWithoutDedupWindow(client, layout.database);
    for (const name of existed) {
      if (missing.has(name)) {
        await run(
          `ALTER TABLE ${qualifiedName(layout.database, name)} MODIFY SETTING ${DEDUP_SETTING} = ${window}`,
        );
      }
    }
  }

  await applyViews(client, layout, run);
  return ran;
}

/** Creates missing views, and swaps in a view whose columns no longer match its table's. */
async function applyViews(
  client: Client,
  layout: ResourceLayout,
  run: (query: string) => Promise<void>,
): Promise<void> {
  const columns = await existingColumns(client, layout.database);
  for (const view of layout.views) {
    const current = columns.get(view.name)?.map((c) => c.name);
    if (current && sameNames(current, view.columns)) continue;
    if (!current) {
      await run(createViewStatement(layout, view));
      continue;
    }
    try {
      for (const statement of replaceViewStatements(layout, view)) await run(statement);
    } catch (err) {
      // Another sink may have swapped in the same view meanwhile.
      const now = (await existingColumns(client, layout.database)).get(view.name)?.map((c) => c.name);
      if (!now || !sameNames(now, view.columns)) throw err;
    }
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((n) => set.has(n));
}

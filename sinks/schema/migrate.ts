// Brings a database in line with a resource layout: creates what is missing, adds new columns, and
// replaces a view whose columns no longer match (a ClickHouse view fixes its column list when it is
// created, on 18.16 and on current releases, so a view of an altered table has to be recreated; it is
// swapped in with a RENAME, so that dashboards reading it never find it missing).
import type { ClickHouseClient } from '@clickhouse/client';
import {
  createDatabaseStatement,
  createTableStatement,
  createViewStatement,
  planAlter,
  replaceViewStatements,
  type ExistingColumn,
} from './ddl.ts';
import type { ResourceLayout } from './layout.ts';
import { quoteString } from './sql.ts';

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

/**
 * Returns the statements it ran. Throws IncompatibleSchemaError (from planAlter) before changing
 * anything when a column was retyped or removed. Safe to run concurrently from several sinks: a column
 * another sink added in the meantime is found on the re-read after the failed ALTER.
 */
export async function applySchema(client: Client, layout: ResourceLayout): Promise<string[]> {
  const ran: string[] = [];
  const run = async (query: string): Promise<void> => {
    await client.command({ query });
    ran.push(query);
  };
  await run(createDatabaseStatement(layout.database));
  const tables = [layout.table, ...layout.children];

  let columns = await existingColumns(client, layout.database);
  const plans = tables.map((t) => ({
    table: t,
    alters: planAlter(layout.database, t, columns.get(t.name) ?? []),
  }));
  for (const { table, alters } of plans) {
    if (!columns.has(table.name)) {
      await run(createTableStatement(layout.database, table));
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

  columns = await existingColumns(client, layout.database);
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
  return ran;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((n) => set.has(n));
}

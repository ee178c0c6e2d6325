// The SQL of the dashboard views (sinks/views.ts): names, qualification, what they read, portability to
// ClickHouse 18.16, and what createDashboardViews runs against a database in a given state.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCE_NAMES } from '../../../core/resources.ts';
import { valueSchema } from '../../../schemas/index.ts';
import { deriveLayout } from '../../../sinks/schema/layout.ts';
import {
  AUDIT_BACKFILL,
  AUDIT_PER_MINUTE,
  AUDIT_PER_MINUTE_MV,
  AUDIT_PER_MINUTE_STATE,
  FIELD_STATS,
  PIPELINE_FRESHNESS,
  RUNS_BY_STATUS,
  auditAggregateSelect,
  createDashboardViews,
  dashboardObjects,
  ensureDashboardViews,
} from '../../../sinks/views.ts';

const DB = 'instabase';
const objects = dashboardObjects(DB);
const byName = new Map(objects.map((o) => [o.name, o]));
const sql = (name: string) => byName.get(name)!.create;

/** Every table and view the sinks create, with its columns. */
const RELATIONS = new Map<string, Set<string>>();
for (const r of RESOURCE_NAMES) {
  const layout = deriveLayout(r, valueSchema(r), { database: DB });
  for (const t of [layout.table, ...layout.children]) {
    RELATIONS.set(t.name, new Set(t.columns.map((c) => c.name)));
  }
  for (const v of layout.views) RELATIONS.set(v.name, new Set(v.columns));
}
for (const o of objects) RELATIONS.set(o.name, new Set(o.columns));

/** `FROM db.x`, `JOIN db.x` and `TO db.x` references. */
function references(statement: string): string[] {
  return [...statement.matchAll(/\b(?:FROM|JOIN|TO)\s+`instabase`\.`([^`]+)`/g)].map((m) => m[1]!);
}

const NOT_ON_18_16: [RegExp, string][] = [
  [/\bDateTime64\b/i, 'DateTime64'],
  [/\bMap\s*\(/, 'Map'],
  [/\bJSON\b/, 'JSON'],
  [/\bLowCardinality\b/i, 'LowCardinality'],
  [/\{[A-Za-z_]\w*\s*:\s*[A-Za-z]\w*\}/, 'query parameters'],
  [/\bOR\s+REPLACE\b/i, 'CREATE OR REPLACE'],
  [/\bDROP\s+VIEW\b/i, 'DROP VIEW'],
  [/\btoStartOfInterval\b/, 'toStartOfInterval'],
  [/\bWITH\s+FILL\b/i, 'WITH FILL'],
  [/\bOVER\s*\(/i, 'window functions'],
  [/\bUNION\s+(?!ALL\b)/i, 'UNION without ALL'],
  [
    /\bIF\s+NOT\s+EXISTS\b.*\bADD\s+COLUMN\b|\bADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\b/i,
    'ADD COLUMN IF NOT EXISTS',
  ],
  [/\b(?:INNER|LEFT|RIGHT|FULL)\s+JOIN\b(?<!ANY LEFT JOIN)/, 'a JOIN other than ANY LEFT JOIN'],
  [/\bON\s*\(/i, 'JOIN … ON'],
];

describe('dashboard view SQL', () => {
  test('names: dash_*, unique, database-qualified, created idempotently', () => {
    assert.deepEqual(
      objects.map((o) => o.name),
      [
        RUNS_BY_STATUS,
        AUDIT_PER_MINUTE_STATE,
        AUDIT_PER_MINUTE_MV,
        AUDIT_PER_MINUTE,
        FIELD_STATS,
        PIPELINE_FRESHNESS,
      ],
    );
    for (const o of objects) {
      assert.match(o.name, /^dash_[a-z_]+$/);
      assert.match(o.create, /^CREATE (?:MATERIALIZED )?(?:VIEW|TABLE) IF NOT EXISTS `instabase`\./, o.name);
      assert.ok(o.create.includes(`\`instabase\`.\`${o.name}\``), `${o.name}: qualified`);
      assert.ok(o.columns.length > 0 && o.doc.length > 0);
    }
  });

  test('only SQL that ClickHouse 18.16 and current releases both run', () => {
    for (const o of objects) {
      const found = NOT_ON_18_16.filter(([re]) => re.test(o.create)).map(([, what]) => what);
      assert.deepEqual(found, [], o.name);
    }
  });

  test('they read only tables and views the sinks create, and the columns they use exist', () => {
    for (const o of objects.filter((x) => x.kind !== 'table')) {
      const refs = references(o.create);
      assert.ok(refs.length > 0, `${o.name} reads something`);
      for (const r of refs) assert.ok(RELATIONS.has(r), `${o.name}: ${r} is not a table or view`);
      for (const m of o.create.matchAll(/\b([a-z_]+_dt)\b/g)) {
        assert.ok(
          refs.some((r) => RELATIONS.get(r)!.has(m[1]!)),
          `${o.name}: ${m[1]} is not a column of ${refs}`,
        );
      }
    }
    assert.deepEqual(references(sql(RUNS_BY_STATUS)), ['runs_current']);
    assert.deepEqual(references(sql(FIELD_STATS)), ['runs_results_fields_current', 'runs_results_current']);
    assert.deepEqual(references(sql(AUDIT_PER_MINUTE_MV)), [AUDIT_PER_MINUTE_STATE, 'audit_logs']);
    assert.deepEqual(references(sql(AUDIT_PER_MINUTE)), [AUDIT_PER_MINUTE_STATE]);
  });

  test('runs by status: per minute of the start, from the current runs', () => {
    const s = sql(RUNS_BY_STATUS);
    assert.match(s, /toStartOfMinute\(ifNull\(`start_timestamp_dt`, `_fetched_at_dt`\)\) AS `minute`/);
    assert.match(s, /GROUP BY `minute`, `status`$/);
  });

  test('audit: a materialized view into an AggregatingMergeTree, counting content hashes once', () => {
    const state = sql(AUDIT_PER_MINUTE_STATE);
    assert.match(state, /`events` AggregateFunction\(uniq, String\)/);
    assert.match(state, /ENGINE = AggregatingMergeTree\(\)\nORDER BY \(`minute`, `log_type`, `email`\)$/);
    const mv = sql(AUDIT_PER_MINUTE_MV);
    assert.ok(mv.endsWith(`AS ${auditAggregateSelect(DB)}`));
    assert.match(
      mv,
      /^CREATE MATERIALIZED VIEW IF NOT EXISTS `instabase`\.`\w+` TO `instabase`\.`\w+_state` AS/,
    );
    assert.match(auditAggregateSelect(DB), /uniqState\(`_content_hash`\) AS `events`/);
    assert.match(auditAggregateSelect(DB), /WHERE `_deleted` = 0/);
    // No Nullable in an ORDER BY key: every key column is made non-null.
    assert.match(auditAggregateSelect(DB), /ifNull\(`log_type`, ''\) AS `log_type`/);
    assert.match(auditAggregateSelect(DB), /ifNull\(`email`, ''\) AS `email`/);
    assert.match(sql(AUDIT_PER_MINUTE), /uniqMerge\(`events`\) AS `events`/);
  });

  test('fields: joined to their document class with ANY LEFT JOIN (…) AS alias USING the parent key', () => {
    const s = sql(FIELD_STATS);
    // The alias: current servers refuse an unnamed joined subquery (Code 206, ALIAS_REQUIRED).
    assert.match(
      s,
      /FROM `instabase`\.`runs_results_fields_current` ANY LEFT JOIN \(SELECT `run_id`, `file_index`, `document_index`, ifNull\(`class_name`, ''\) AS `doc_class` FROM `instabase`\.`runs_results_current`\) AS `doc` USING \(`run_id`, `file_index`, `document_index`\)/,
    );
    assert.match(s, /`errors` \/ `fields` AS `error_rate`/);
    assert.match(s, /avg\(`confidence`\) AS `mean_confidence`/);
  });

  test('freshness: one UNION ALL branch per resource table', () => {
    const s = sql(PIPELINE_FRESHNESS);
    assert.equal(s.split(' UNION ALL ').length, RESOURCE_NAMES.length);
    for (const r of RESOURCE_NAMES) assert.ok(s.includes(`'${r}' AS \`resource\``), r);
    assert.match(s, /toInt64\(now\(\)\) - intDiv\(max\(`_fetched_at`\), 1000\)/);
  });

  test('an odd database name is quoted everywhere', () => {
    const odd = dashboardObjects('we`ird');
    for (const o of odd) {
      assert.ok(!/[^\\]`we`ird/.test(o.create), `${o.name}: unescaped`);
      assert.ok(o.create.includes('`we\\`ird`.'), `${o.name}: qualified`);
    }
  });
});

/**
 * A ClickHouse stand-in: the tables and columns of one database, and every statement it was sent.
 * Statements matching `refuse` fail the way the server fails them, and are not recorded.
 */
function fakeClient(tables: Record<string, string[]>, refuse?: RegExp, version = '18.16.1') {
  const commands: string[] = [];
  return {
    commands,
    client: {
      command: async ({ query }: { query: string }) => {
        if (refuse?.test(query)) throw new Error('Code: 206. DB::Exception: No alias for subquery');
        commands.push(query);
        return {} as never;
      },
      query: async ({ query }: { query: string }) => {
        if (query === 'SELECT version() AS v') return { json: async () => [{ v: version }] } as never;
        const rows = query.startsWith('SELECT name FROM system.tables')
          ? Object.keys(tables).map((name) => ({ name }))
          : Object.entries(tables).flatMap(([table, cols]) => cols.map((name) => ({ table, name })));
        return { json: async () => rows } as never;
      },
    },
  };
}

function everything(): Record<string, string[]> {
  const tables: Record<string, string[]> = {};
  for (const [name, cols] of RELATIONS) tables[name] = [...cols];
  return tables;
}

const createOf = (name: string) => new RegExp(`^CREATE [A-Z ]*IF NOT EXISTS \`${DB}\`\\.\`${name}\` `);

describe('createDashboardViews', () => {
  test('on an empty database: the tables, then every dashboard object, then the audit backfill', async () => {
    const { client, commands } = fakeClient({});
    const { ran, failed } = await createDashboardViews(client, DB);
    assert.deepEqual(failed, []);
    assert.deepEqual(ran, commands);
    const firstDash = commands.findIndex((c) => c.includes('`dash_'));
    const tableStatements = commands.slice(0, firstDash);
    for (const r of RESOURCE_NAMES) {
      for (const prefix of [
        `CREATE TABLE IF NOT EXISTS \`${DB}\`.\`${r}\` (`,
        `CREATE VIEW IF NOT EXISTS \`${DB}\`.\`${r}_current\` `,
      ]) {
        assert.ok(
          tableStatements.some((c) => c.startsWith(prefix)),
          `${r}: ${prefix}… before the dashboard views`,
        );
      }
    }
    assert.deepEqual(
      commands.slice(firstDash, firstDash + objects.length),
      objects.map((o) => o.create),
    );
    assert.equal(commands.length, firstDash + objects.length + 1);
    assert.equal(
      commands.at(-1),
      `INSERT INTO \`${DB}\`.\`${AUDIT_PER_MINUTE_STATE}\` (\`minute\`, \`log_type\`, \`email\`, \`events\`) ${auditAggregateSelect(DB)}`,
    );
  });

  test("the resource tables it makes follow the server's version; the dashboard objects do not change", async () => {
    const { client, commands } = fakeClient({}, undefined, '26.9.2.1');
    const { failed } = await createDashboardViews(client, DB, { auditTtlDays: 90 });
    assert.deepEqual(failed, []);
    const audit = commands.find((c) => c.startsWith(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`audit_logs\``))!;
    assert.match(audit, /ENGINE = ReplacingMergeTree\(`_offset`, `_deleted`\)\nPARTITION BY toYYYYMM/);
    assert.match(audit, /\nTTL .* \+ toIntervalDay\(90\)\n/);
    assert.ok(objects.every((o) => commands.includes(o.create)));
    const { client: legacy, commands: legacyCommands } = fakeClient({});
    await createDashboardViews(legacy, DB, { auditTtlDays: 90 });
    const legacyAudit = legacyCommands.find((c) =>
      c.startsWith(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`audit_logs\``),
    )!;
    assert.match(legacyAudit, /ENGINE = ReplacingMergeTree\(`_offset`\)\nORDER BY \(`_content_hash`\)$/);
  });

  test('when everything exists: nothing', async () => {
    const { client, commands } = fakeClient(everything());
    assert.deepEqual(await createDashboardViews(client, DB), { ran: [], failed: [] });
    assert.deepEqual(commands, []);
  });

  test('a plain view with other columns is dropped (DROP TABLE) and recreated; data is never dropped', async () => {
    const tables = everything();
    tables[FIELD_STATS] = ['field_name', 'fields'];
    tables[AUDIT_PER_MINUTE_STATE] = ['minute', 'old_column'];
    const { client } = fakeClient(tables);
    assert.deepEqual((await createDashboardViews(client, DB)).ran, [
      `DROP TABLE IF EXISTS \`${DB}\`.\`${FIELD_STATS}\``,
      sql(FIELD_STATS),
    ]);
  });

  test('tables the sinks already made are left to them; a missing view of an existing database is added', async () => {
    const tables = everything();
    delete tables[RUNS_BY_STATUS];
    const { client } = fakeClient(tables);
    assert.deepEqual((await createDashboardViews(client, DB)).ran, [sql(RUNS_BY_STATUS)]);
  });

  test('a refused view costs only itself: every other object and the backfill are still created', async () => {
    const { client, commands } = fakeClient({}, createOf(FIELD_STATS));
    const { ran, failed } = await createDashboardViews(client, DB);
    assert.deepEqual(failed, [
      { name: FIELD_STATS, error: 'Code: 206. DB::Exception: No alias for subquery', dependents: [] },
    ]);
    assert.deepEqual(ran, commands);
    const dash = ran.filter((c) => c.includes('`dash_'));
    assert.deepEqual(dash, [
      ...objects.filter((o) => o.name !== FIELD_STATS).map((o) => o.create),
      `INSERT INTO \`${DB}\`.\`${AUDIT_PER_MINUTE_STATE}\` (\`minute\`, \`log_type\`, \`email\`, \`events\`) ${auditAggregateSelect(DB)}`,
    ]);
  });

  test('a refused aggregate table: what needs it is named and not attempted, the rest is created', async () => {
    const { client } = fakeClient({}, createOf(AUDIT_PER_MINUTE_STATE));
    const { ran, failed } = await createDashboardViews(client, DB);
    assert.deepEqual(
      failed.map((f) => [f.name, f.dependents]),
      [[AUDIT_PER_MINUTE_STATE, [AUDIT_PER_MINUTE_MV, AUDIT_PER_MINUTE, AUDIT_BACKFILL]]],
    );
    assert.deepEqual(
      ran.filter((c) => c.includes('`dash_')),
      [sql(RUNS_BY_STATUS), sql(FIELD_STATS), sql(PIPELINE_FRESHNESS)],
    );
  });

  test("a resource's tables refused: the views that read them are named and not attempted", async () => {
    const { client } = fakeClient({}, /^CREATE TABLE IF NOT EXISTS `instabase`\.`runs` /);
    const { ran, failed } = await createDashboardViews(client, DB);
    assert.deepEqual(
      failed.map((f) => [f.name, f.dependents]),
      [['tables of runs', [RUNS_BY_STATUS, PIPELINE_FRESHNESS]]],
    );
    for (const name of [AUDIT_PER_MINUTE_STATE, AUDIT_PER_MINUTE_MV, AUDIT_PER_MINUTE, FIELD_STATS]) {
      assert.ok(ran.includes(sql(name)), name);
    }
    assert.ok(ran.some((c) => c.startsWith(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`batches\``)));
  });

  test("ensureDashboardViews logs each of the server's refusals with what it kept from being created", async () => {
    const warnings: [Record<string, unknown>, string][] = [];
    const logger = {
      info: () => undefined,
      warn: (fields: Record<string, unknown>, msg: string) => void warnings.push([fields, msg]),
    };
    const { client: refusing } = fakeClient({}, createOf(AUDIT_PER_MINUTE_STATE));
    assert.equal(await ensureDashboardViews(refusing, DB, logger as never), false);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]![0].object, AUDIT_PER_MINUTE_STATE);
    assert.deepEqual(warnings[0]![0].notAttempted, [AUDIT_PER_MINUTE_MV, AUDIT_PER_MINUTE, AUDIT_BACKFILL]);
    assert.match(warnings[0]![1], new RegExp(`${AUDIT_PER_MINUTE_STATE}, so neither ${AUDIT_PER_MINUTE_MV}`));

    const { client } = fakeClient(everything());
    assert.equal(await ensureDashboardViews(client, DB, logger as never), true);
    assert.equal(warnings.length, 1);
  });

  // Going on without the views would leave the materialized view missing while audit rows are inserted:
  // the sinks' start-up waits for the server instead (sinks/daemon.ts) and runs the pass again.
  test('a server that stops answering, at any statement, is thrown as an outage to wait out', async () => {
    const logger = { info: () => undefined, warn: () => undefined };
    const { client: healthy, commands } = fakeClient({});
    await createDashboardViews(healthy, DB);
    const statements = commands.length;
    assert.ok(statements > 10);
    for (let at = 0; at <= statements; at += 1) {
      const { client } = fakeClient({});
      let seen = 0;
      const down = new Error('connect ECONNREFUSED 127.0.0.1:8123');
      const failing = {
        query: (...args: Parameters<typeof client.query>) => client.query(...args),
        command: (...args: Parameters<typeof client.command>) => {
          if (seen++ === at) return Promise.reject(down);
          return client.command(...args);
        },
      };
      const err = await ensureDashboardViews(failing, DB, logger as never).then(
        () => undefined,
        (e: unknown) => e as Error & { service?: string; permanent?: boolean },
      );
      if (at === statements) {
        assert.equal(err, undefined, 'nothing failed');
        continue;
      }
      assert.equal(err?.name, 'ServiceConnectionError', `statement ${at}`);
      assert.equal(err?.service, 'ClickHouse');
      assert.equal(err?.permanent, false);
      assert.match(err!.message, /ECONNREFUSED/);
    }
    const unreachable = {
      command: async () => ({}) as never,
      query: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:8123');
      },
    };
    await assert.rejects(ensureDashboardViews(unreachable, DB, logger as never), {
      name: 'ServiceConnectionError',
    });
  });
});

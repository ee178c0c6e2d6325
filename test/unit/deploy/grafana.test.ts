// The Grafana provisioning under deploy/grafana: the data source points at the compose ClickHouse, and every
// panel of the dashboard reads only tables and views the sinks create (sinks/schema/layout.ts), with SQL that
// ClickHouse 18.16 and current releases both run. With CLICKHOUSE_URL set (npm test starts the local
// stack for the integration tests), every panel query also runs against that server on sample rows.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createClickHouse } from '../../../core/clickhouse.ts';
import { loadConfig } from '../../../core/config.ts';
import { RESOURCE_NAMES } from '../../../core/resources.ts';
import { avroType, valueSchema } from '../../../schemas/index.ts';
import { createStatements } from '../../../sinks/schema/ddl.ts';
import { deriveLayout, type ResourceLayout } from '../../../sinks/schema/layout.ts';
import { createRowMapper, type Row } from '../../../sinks/schema/rows.ts';
import { dashboardObjects } from '../../../sinks/views.ts';
import { SAMPLES } from '../schemas/samples.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

const PLUGIN = 'grafana-clickhouse-datasource';
const DATABASE_VARIABLE = '${database}';

interface Target {
  refId?: string;
  rawSql?: string;
  datasource?: { type?: string; uid?: string };
}

interface Panel {
  id?: number;
  title?: string;
  type?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

interface Dashboard {
  uid?: string;
  title?: string;
  panels?: Panel[];
  templating?: { list?: { name: string; type: string; query?: string; current?: { value?: string } }[] };
}

const DASHBOARD = JSON.parse(read('deploy/grafana/dashboards/instabase.json')) as Dashboard;
const DATASOURCES = parseYaml(read('deploy/grafana/provisioning/datasources/clickhouse.yaml')) as {
  apiVersion: number;
  datasources: {
    uid: string;
    type: string;
    jsonData: Record<string, unknown>;
    secureJsonData?: Record<string, unknown>;
  }[];
};
const PROVIDERS = parseYaml(read('deploy/grafana/provisioning/dashboards/instabase.yaml')) as {
  providers: { type: string; options: { path: string } }[];
};
const COMPOSE = parseYaml(read('docker-compose.yml'), { merge: true }) as {
  services: Record<
    string,
    { environment?: Record<string, unknown>; volumes?: string[]; ports?: string[]; profiles?: string[] }
  >;
};

const LAYOUTS: ResourceLayout[] = RESOURCE_NAMES.map((r) =>
  deriveLayout(r, valueSchema(r), { database: 'instabase' }),
);
/**
 * Table and view name → its columns, for every resource: main tables, child tables, `_current` views;
 * and the dashboard views the sinks create over them (sinks/views.ts).
 */
const RELATIONS = new Map<string, Set<string>>();
for (const layout of LAYOUTS) {
  for (const t of [layout.table, ...layout.children])
    RELATIONS.set(t.name, new Set(t.columns.map((c) => c.name)));
  for (const v of layout.views) RELATIONS.set(v.name, new Set(v.columns));
}
const DASHBOARD_OBJECTS = dashboardObjects('instabase');
for (const o of DASHBOARD_OBJECTS) RELATIONS.set(o.name, new Set(o.columns));

function allPanels(panels: Panel[] = DASHBOARD.panels ?? []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function queries(dashboard: Dashboard = DASHBOARD): { panel: string; sql: string }[] {
  return allPanels(dashboard.panels ?? []).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title ?? `panel ${p.id}`, sql: t.rawSql ?? '' })),
  );
}

/**
 * The tables a query reads: `FROM x` / `JOIN x`, and the alternation of a `merge(db, '^(a|b)$')` table
 * function; with whether each is qualified with the dashboard's database variable.
 */
function relationsReferenced(sql: string): { name: string; qualified: boolean }[] {
  const refs: { name: string; qualified: boolean }[] = [];
  for (const m of sql.matchAll(
    /\b(?:FROM|JOIN)\s+(\$\{database\}\.)?`?([A-Za-z_][A-Za-z0-9_]*)\b`?(?!\s*\()/gi,
  )) {
    refs.push({ name: m[2]!, qualified: m[1] !== undefined });
  }
  for (const m of sql.matchAll(/\bmerge\(\s*'([^']*)'\s*,\s*'([^']*)'\s*\)/gi)) {
    const names = /^\^\(([A-Za-z0-9_|]+)\)\$$/.exec(m[2]!);
    if (!names) {
      refs.push({ name: `merge regexp ${m[2]}`, qualified: false });
      continue;
    }
    for (const name of names[1]!.split('|')) refs.push({ name, qualified: m[1] === DATABASE_VARIABLE });
  }
  return refs;
}

function checkRelations(sql: string): string[] {
  const problems: string[] = [];
  const refs = relationsReferenced(sql);
  if (!refs.length) problems.push('reads no table');
  for (const r of refs) {
    if (!r.qualified) problems.push(`${r.name}: not qualified with ${DATABASE_VARIABLE}.`);
    else if (!RELATIONS.has(r.name)) problems.push(`${r.name}: no such table or view`);
  }
  // The derived DateTime columns are where a wrong name is easiest to write: each must exist.
  for (const m of sql.matchAll(/\b([a-z_][a-z0-9_]*_dt)\b/g)) {
    if (!refs.some((r) => RELATIONS.get(r.name)?.has(m[1]!))) {
      problems.push(`${m[1]}: not a column of ${refs.map((r) => r.name).join(', ')}`);
    }
  }
  return problems;
}

/** What either ClickHouse 18.16 or the Grafana macros that expand to DateTime64 would reject. */
const NOT_PORTABLE: [RegExp, string][] = [
  [/\bDateTime64\b/i, 'DateTime64'],
  [/\bMap\s*\(/, 'Map type'],
  [/\bJSON\b/, 'JSON type'],
  [/\{[A-Za-z_]\w*\s*:\s*[A-Za-z]\w*\}/, 'query parameter {x:Type}'],
  [/\btoStartOfInterval\b/i, 'toStartOfInterval'],
  [/\$__(?:timeFilter_ms|fromTime_ms|toTime_ms|timeInterval_ms|dateTimeFilter|dt)\b/, 'a DateTime64 macro'],
  [/\$__timeInterval\b/, '$__timeInterval (toStartOfInterval)'],
  [/\bUNION\s+DISTINCT\b|\bUNION\s+(?!ALL\b)/i, 'UNION without ALL'],
  [/\bOVER\s*\(/i, 'window functions'],
  [/\bWITH\s+FILL\b/i, 'WITH FILL'],
  [/\bLowCardinality\b/i, 'LowCardinality'],
];

function checkPortable(sql: string): string[] {
  return NOT_PORTABLE.filter(([re]) => re.test(sql)).map(([, what]) => what);
}

/** The query as the plugin sends it: variables and $__timeFilter expanded (toDateTime of unix seconds). */
function expand(sql: string, database: string, from: number, to: number): string {
  return sql
    .replaceAll(DATABASE_VARIABLE, database)
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      (_m, c: string) => `${c} >= toDateTime(${from}) AND ${c} <= toDateTime(${to})`,
    );
}

describe('deploy/grafana', () => {
  it('provisions the ClickHouse data source at the compose service, with credentials from the environment', () => {
    assert.equal(DATASOURCES.apiVersion, 1);
    assert.equal(DATASOURCES.datasources.length, 1);
    const ds = DATASOURCES.datasources[0]!;
    assert.equal(ds.type, PLUGIN);
    assert.equal(ds.jsonData.protocol, 'http');
    assert.ok(COMPOSE.services[ds.jsonData.host as string], `${ds.jsonData.host} is not a compose service`);
    const clickhousePorts = (COMPOSE.services.clickhouse!.ports ?? []).map((p) => Number(p.split(':').pop()));
    assert.ok(clickhousePorts.includes(Number(ds.jsonData.port)), 'the port is ClickHouse HTTP');
    assert.equal(ds.secureJsonData?.password, '$CLICKHOUSE_PASSWORD', 'no password in the file');
    // Every $VAR the provisioning files use is in Grafana's compose environment.
    const grafanaEnv = COMPOSE.services.grafana!.environment ?? {};
    const files = [
      'deploy/grafana/provisioning/datasources/clickhouse.yaml',
      'deploy/grafana/provisioning/dashboards/instabase.yaml',
    ];
    for (const file of files) {
      const yaml = read(file).replace(/^\s*#.*$/gm, '');
      for (const m of yaml.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g)) {
        assert.ok(m[1]! in grafanaEnv, `${file}: $${m[1]} is not in the grafana service environment`);
      }
    }
    assert.equal(ds.jsonData.defaultDatabase, '$CLICKHOUSE_DATABASE');
  });

  it('installs the plugin and mounts the provisioning and dashboards where the provider reads them', () => {
    const grafana = COMPOSE.services.grafana!;
    assert.deepEqual(grafana.profiles, ['dashboards']);
    assert.match(String(grafana.environment?.GF_INSTALL_PLUGINS), new RegExp(`\\b${PLUGIN}\\b`));
    const mounts = Object.fromEntries(
      (grafana.volumes ?? []).map((v) => v.split(':')).map(([src, dst]) => [src!.replace(/^\.\//, ''), dst!]),
    );
    assert.equal(mounts['deploy/grafana/provisioning'], '/etc/grafana/provisioning');
    assert.equal(PROVIDERS.providers[0]!.type, 'file');
    assert.equal(mounts['deploy/grafana/dashboards'], PROVIDERS.providers[0]!.options.path);
    const home = String(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH);
    assert.equal(home, `${PROVIDERS.providers[0]!.options.path}/instabase.json`);
  });

  it('has panels whose queries go to the provisioned data source', () => {
    const uid = DATASOURCES.datasources[0]!.uid;
    assert.equal(DASHBOARD.uid, 'instabase-stream');
    const panels = allPanels().filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 5);
    for (const p of panels) {
      assert.ok(p.targets?.length, `${p.title}: no query`);
      for (const t of p.targets ?? []) {
        assert.deepEqual(t.datasource, { type: PLUGIN, uid }, `${p.title}: data source`);
        assert.ok(t.rawSql?.trim(), `${p.title}: empty SQL`);
      }
    }
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  });

  it('reads the database from a variable whose default is the configured database', () => {
    const v = DASHBOARD.templating?.list?.find((x) => x.name === 'database');
    assert.ok(v, 'no database variable');
    const defaultDatabase = loadConfig({ env: {}, cwd: os.tmpdir() }).clickhouse.database;
    assert.equal(v.query, defaultDatabase);
    assert.equal(v.current?.value, defaultDatabase);
  });

  it('reads only tables and views that the sinks create, qualified with the database variable', () => {
    for (const { panel, sql } of queries()) assert.deepEqual(checkRelations(sql), [], panel);
    const read = new Set(queries().flatMap(({ sql }) => relationsReferenced(sql).map((r) => r.name)));
    for (const name of ['runs_current', 'audit_logs_current', 'runs_results_fields_current']) {
      assert.ok(read.has(name), `no panel reads ${name}`);
    }
    // A dashboard view read by a panel covers the resource tables it reads.
    const covered = new Set([
      ...read,
      ...DASHBOARD_OBJECTS.filter((o) => read.has(o.name)).flatMap((o) => o.reads),
    ]);
    for (const resource of RESOURCE_NAMES) {
      assert.ok(covered.has(resource) || covered.has(`${resource}_current`), `no freshness for ${resource}`);
    }
    assert.deepEqual(checkRelations('SELECT count() FROM ${database}.runs_curent'), [
      'runs_curent: no such table or view',
    ]);
    assert.deepEqual(checkRelations('SELECT toStartOfMinute(start_dt) FROM runs_current'), [
      'runs_current: not qualified with ${database}.',
      'start_dt: not a column of runs_current',
    ]);
    assert.deepEqual(checkRelations('SELECT 1'), ['reads no table']);
    assert.deepEqual(checkRelations("SELECT _table FROM merge('instabase', '^(runs|nope)$')"), [
      'runs: not qualified with ${database}.',
      'nope: not qualified with ${database}.',
    ]);
    assert.deepEqual(checkRelations("SELECT 1 FROM merge('${database}', '^(runs|nope)$')"), [
      'nope: no such table or view',
    ]);
    assert.deepEqual(checkRelations("SELECT 1 FROM merge('${database}', 'runs.*')"), [
      'merge regexp runs.*: not qualified with ${database}.',
    ]);
  });

  it('uses only SQL that ClickHouse 18.16 and current releases both run', () => {
    for (const { panel, sql } of queries()) assert.deepEqual(checkPortable(sql), [], panel);
    assert.deepEqual(
      checkPortable(
        'SELECT toStartOfInterval(t, INTERVAL 1 minute), CAST(x AS DateTime64(3)) FROM a WHERE id = {id:UInt64} ' +
          'AND $__timeFilter_ms(t) UNION SELECT 1',
      ),
      [
        'DateTime64',
        'query parameter {x:Type}',
        'toStartOfInterval',
        'a DateTime64 macro',
        'UNION without ALL',
      ],
    );
  });

  it(
    'runs every panel query against ClickHouse on sample rows',
    {
      skip:
        !process.env.CLICKHOUSE_URL &&
        'CLICKHOUSE_URL is not set (npm test sets it when it starts the stack)',
    },
    async () => {
      const database = `deploy_dashboard_${randomBytes(4).toString('hex')}`;
      const client = createClickHouse(loadConfig({ env: process.env, cwd: os.tmpdir() }));
      try {
        const ingestedAt = Math.floor(Date.now() / 1000);
        let offset = 1;
        for (const resource of RESOURCE_NAMES) {
          const layout = deriveLayout(resource, valueSchema(resource), { database });
          for (const statement of createStatements(layout)) await client.command({ query: statement });
          const mapper = createRowMapper(layout);
          const out = mapper.buffers();
          const type = avroType(resource);
          for (const record of SAMPLES[resource]) {
            const decoded: unknown = type.fromBuffer(type.toBuffer(record));
            mapper.map(
              decoded,
              { topic: `instabase.${resource}`, partition: 0, offset: String(offset++) },
              ingestedAt,
              out,
            );
          }
          for (let i = 0; i < mapper.tables.length; i++) {
            const values = out[i] as Row[];
            if (values.length) {
              await client.insert({
                table: `${database}.${mapper.tables[i]}`,
                values,
                format: 'JSONEachRow',
              });
            }
          }
        }
        for (const o of dashboardObjects(database)) await client.command({ query: o.create });
        // A range wide enough for the sample timestamps (2025 and 2026).
        const from = Date.UTC(2000, 0, 1) / 1000;
        const to = Date.UTC(2100, 0, 1) / 1000;
        const results = new Map<string, Record<string, unknown>[]>();
        for (const { panel, sql } of queries()) {
          const rs = await client.query({ query: expand(sql, database, from, to), format: 'JSONEachRow' });
          results.set(panel, await rs.json<Record<string, unknown>>());
        }
        const rows = (title: RegExp) => {
          const key = [...results.keys()].find((k) => title.test(k));
          assert.ok(key, `no panel titled ${title}`);
          return results.get(key)!;
        };
        assert.ok(rows(/^Runs started/).length > 0, 'runs over time');
        assert.ok(rows(/^Audit events per minute/).length > 0, 'audit events per minute');
        const fields = rows(/^Extracted fields/);
        assert.ok(fields.length > 0, 'field statistics');
        for (const f of fields)
          assert.ok(Number(f.error_rate) >= 0 && Number(f.error_rate) <= 1, 'error rate');
        const freshness = rows(/^Freshness/);
        assert.deepEqual(freshness.map((r) => r.resource).sort(), [...RESOURCE_NAMES].sort());
      } finally {
        await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
        await client.close();
      }
    },
  );
});

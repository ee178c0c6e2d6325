/**
 * The cluster DDL (CLICKHOUSE_CLUSTER) against a current ClickHouse: the engine of ClickHouse 26.x
 * (chDB, test/chdb/) with the features its version() selects. chDB has no Keeper and refuses every
 * `ON CLUSTER` statement (QUERY_IS_PROHIBITED), so each statement is checked as far as it can be
 * without one, and the rest is left to the 18.16 cluster test (clickhouse-cluster.test.ts):
 *
 * 1. Every statement the sinks generate for a cluster, for every resource (tables, Distributed tables,
 *    `_current` views, ALTER … ADD COLUMN ON CLUSTER, the RENAME swaps of Distributed tables and
 *    views, the dashboard objects and their DROPs), parses on 26.x as it is: formatQuery, with its
 *    ON CLUSTER kept.
 * 2. Every Replicated*MergeTree CREATE, without ON CLUSTER, gets as far as the replication itself:
 *    the server refuses it with NO_ZOOKEEPER and nothing else, after checking columns, engine arguments
 *    (is_deleted must be UInt8, …), sorting and partition keys and TTL.
 * 3. What runs without Keeper runs: the sinks' own applySchema and createDashboardViews, with the
 *    cluster features, against the engine started with a one-shard cluster (remote_servers, macros)
 *    whose one replica is the engine itself, through a client that drops ` ON CLUSTER …` and turns
 *    Replicated*MergeTree(path, replica, args) into *MergeTree(args). The Distributed tables, views,
 *    migrations (ALTER, RENAME swaps), materialized view and the sinks' inserts through the Distributed
 *    tables (insert_distributed_sync=1) run unchanged, and `_current` and the dashboard read the data.
 *
 * Each check is shown to fail on a deliberately broken statement. Skipped, with the reason, when the
 * venv is missing (bash test/python/setup.sh).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../core/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import {
  RESOURCES,
  avroType,
  entityKey,
  valueSchema,
  type AvroRecordSchema,
  type ResourceName,
} from '../../schemas/index.ts';
import { insertEncoded } from '../../sinks/runner.ts';
import {
  createStatements,
  localTableName,
  planAlter,
  replaceDistributedStatements,
  replaceViewStatements,
} from '../../sinks/schema/ddl.ts';
import {
  insertSettings,
  serverFeatures,
  withCluster,
  type ServerFeatures,
} from '../../sinks/schema/features.ts';
import { deriveLayout, type ResourceLayout } from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { quoteString } from '../../sinks/schema/sql.ts';
import {
  AUDIT_PER_MINUTE,
  AUDIT_PER_MINUTE_STATE,
  RUNS_BY_STATUS,
  createDashboardViews,
  dashboardObjects,
  dropStatement,
} from '../../sinks/views.ts';
import { chdbUnavailable, startChdbClickHouse, type ChdbClickHouse } from '../chdb/harness.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';
import { freePort } from '../helpers/sink-clickhouse.ts';
import { withStoredKey } from '../helpers/stored-key.ts';
import { SAMPLES } from '../unit/schemas/samples.ts';
import { existingColumns, jsonLines, mapRecords, withNewFields } from '../helpers/layout-rows.ts';

const unavailable = chdbUnavailable();
const CLUSTER = 'ibs_cluster';

/**
 * One shard, one replica: the engine itself. A replica counts as local when its host is a loopback
 * address and its port is the configured tcp_port; chDB listens on no port, and with
 * prefer_localhost_replica (on by default) a local replica is read and written in-process. The test
 * checks that the replica is local, so nothing is ever sent to whatever listens on that port.
 */
function clusterConfig(tcpPort: number): string {
  return `<clickhouse>
  <tcp_port>${tcpPort}</tcp_port>
  <remote_servers>
    <${CLUSTER}>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>127.0.0.1</host><port>${tcpPort}</port></replica>
      </shard>
    </${CLUSTER}>
  </remote_servers>
  <macros><shard>01</shard><replica>replica-1</replica></macros>
</clickhouse>
`;
}

const ON_CLUSTER = ` ON CLUSTER \`${CLUSTER}\``;
const REPLICATED = /ENGINE = Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?/;

/** A cluster statement as a server without Keeper can run it (see the header, 3). */
function withoutKeeper(statement: string): string {
  return statement.replaceAll(ON_CLUSTER, '').replace(REPLICATED, 'ENGINE = $1(');
}

/**
 * Every statement the sinks generate for a cluster, for every resource: what applySchema and
 * createDashboardViews run on a fresh database, after a new field (ADD COLUMN on the local table, the
 * Distributed table and the views replaced), and when a dashboard view changes (DROP, CREATE). The
 * dashboard's backfill INSERT is built inside createDashboardViews; the last test parses it as it ran.
 */
function clusterStatements(database: string, features: ServerFeatures): string[] {
  const cluster = features.cluster!;
  const out: string[] = [];
  for (const resource of RESOURCES) {
    const v1 = deriveLayout(resource, valueSchema(resource), { database, features });
    const v2 = deriveLayout(resource, withNewFields(resource), { database, features });
    out.push(...createStatements(v1));
    for (const table of [v2.table, ...v2.children]) {
      const before = [v1.table, ...v1.children].find((t) => t.name === table.name)!;
      // The local table is altered; the Distributed one is replaced (replaceDistributedStatements).
      out.push(...planAlter(database, table, existingColumns(before), { cluster, distributed: false }));
      out.push(...replaceDistributedStatements(database, table, cluster, v2.table.orderBy));
    }
    for (const view of v2.views) out.push(...replaceViewStatements(v2, view));
  }
  for (const o of dashboardObjects(database, cluster)) {
    out.push(...(o.before ?? []), o.create);
    if (o.kind === 'view') out.push(dropStatement(database, o.name, cluster));
  }
  return out;
}

describe(
  'cluster DDL on ClickHouse 26.x (chDB): parses, replicated tables are valid up to Keeper, the rest runs',
  { skip: unavailable ? `no current ClickHouse for this run: ${unavailable}` : false, timeout: 180_000 },
  () => {
    let server: ChdbClickHouse;
    let config: Config;
    let ch: ClickHouseClient;
    let features: ServerFeatures;
    const db = uniqueName('itclcur_');
    let nextOffset = 100;
    /** Statements the sinks ran through `keeperless`, as they wrote them. */
    const ran: string[] = [];

    before(async () => {
      const tcpPort = await freePort();
      server = await startChdbClickHouse(60_000, { config: clusterConfig(tcpPort) });
      config = testConfig(db, {}, { CLICKHOUSE_URL: server.url, CLICKHOUSE_DATABASE: db });
      ch = createClickHouse(config);
    });
    after(async () => {
      await ch?.close();
      await server?.stop();
    });

    async function select<T>(query: string): Promise<T[]> {
      const rs = await ch.query({
        query,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      });
      return rs.json<T>();
    }

    /** The server's error for a statement, or undefined when it ran. */
    async function refusal(query: string): Promise<string | undefined> {
      try {
        await ch.command({ query });
        return undefined;
      } catch (err) {
        // @clickhouse/client's ClickHouseError: the message, and the error's name as `type`.
        const { message, type } = err as Error & { type?: string };
        return `(${type}) ${message}`;
      }
    }

    /** formatQuery of a statement on the server: throws when the server cannot parse it. */
    async function formatted(statement: string): Promise<string> {
      const [row] = await select<{ f: string }>(`SELECT formatQuery(${quoteString(statement)}) AS f`);
      return row!.f;
    }

    /** Throws unless the statement parses on the server and keeps its ON CLUSTER. */
    async function assertParses(statement: string): Promise<void> {
      const f = await formatted(statement);
      if (statement.includes(ON_CLUSTER)) {
        assert.ok(f.includes(` ON CLUSTER ${CLUSTER}`), `ON CLUSTER lost: ${statement}\n→ ${f}`);
      }
    }

    /** Throws unless a Replicated CREATE (ON CLUSTER dropped) is refused for want of Keeper only. */
    async function assertValidUpToKeeper(statement: string): Promise<void> {
      const error = await refusal(statement.replaceAll(ON_CLUSTER, ''));
      assert.ok(error !== undefined, `ran without Keeper: ${statement}`);
      assert.match(error, /\(NO_ZOOKEEPER\)/, `${statement}\n→ ${error}`);
    }

    /** The sinks' client, except that it runs each command as withoutKeeper makes it. */
    const keeperless = () =>
      ({
        query: ch.query.bind(ch),
        command: (params: Parameters<ClickHouseClient['command']>[0]) => {
          ran.push(params.query);
          return ch.command({ ...params, query: withoutKeeper(params.query) });
        },
      }) as Pick<ClickHouseClient, 'command' | 'query'>;

    function layoutOf(resource: ResourceName, database = db, schema = valueSchema(resource)): ResourceLayout {
      return deriveLayout(resource, schema, { database, features });
    }

    /** Through Avro, the row mapper, and the sinks' insert with the cluster's settings. */
    async function insert(
      layout: ResourceLayout,
      records: readonly unknown[],
      schema?: AvroRecordSchema,
    ): Promise<void> {
      const mapped = mapRecords(layout, records, {
        topic: `t.${layout.resource}`,
        offset: nextOffset,
        ingestedAt: 1764140000,
        ...(schema ? { schema } : {}),
      });
      nextOffset += records.length;
      for (const [i, { name, rows }] of mapped.tables.entries()) {
        if (!rows.length) continue;
        const table = `\`${layout.database}\`.\`${name}\``;
        await insertEncoded(
          ch,
          table,
          jsonLines(rows),
          insertSettings(features, `cluster-${nextOffset}-${i}`),
        );
      }
    }

    test('the engine is 26.x, its one-shard cluster is itself, and ON CLUSTER needs what it lacks', async () => {
      features = withCluster(await serverFeatures(ch), CLUSTER);
      assert.ok(features.version[0] >= 26, `version ${server.version}`);
      assert.deepEqual(
        await select(`SELECT host_address, is_local FROM system.clusters WHERE cluster = '${CLUSTER}'`),
        [{ host_address: '127.0.0.1', is_local: 1 }],
      );
      assert.deepEqual(await select(`SELECT macro, substitution FROM system.macros ORDER BY macro`), [
        { macro: 'replica', substitution: 'replica-1' },
        { macro: 'shard', substitution: '01' },
      ]);
      // Why (1) and (2) stop where they do.
      assert.match((await refusal(`CREATE DATABASE x${ON_CLUSTER}`))!, /QUERY_IS_PROHIBITED/);
      // The settings the cluster's inserts send are known here.
      const settings = insertSettings(features, 'token')!;
      assert.equal(settings.insert_distributed_sync, '1');
      const known = await select<{ name: string }>(
        `SELECT name FROM system.settings WHERE name IN (${Object.keys(settings).map(quoteString).join(', ')})`,
      );
      assert.deepEqual(known.map((s) => s.name).sort(), Object.keys(settings).sort());
    });

    test('every cluster statement of every resource and of the dashboard parses as it is', async () => {
      const statements = clusterStatements(db, features);
      assert.ok(statements.length > 150, `${statements.length} statements`);
      assert.ok(statements.filter((s) => s.includes(ON_CLUSTER)).length > 150);
      for (const statement of statements) await assertParses(statement);
    });

    test('every Replicated*MergeTree CREATE is refused for want of Keeper, and for nothing else', async () => {
      await ch.command({ query: `CREATE DATABASE IF NOT EXISTS \`${db}\`` });
      const replicated = clusterStatements(db, features).filter((s) => REPLICATED.test(s));
      // A main and a local table per table of every resource, and the audit aggregate's.
      const tables = RESOURCES.reduce((n, r) => n + 1 + layoutOf(r).children.length, 0);
      assert.equal(new Set(replicated).size, tables + 1);
      for (const statement of new Set(replicated)) await assertValidUpToKeeper(statement);
    });

    test('each check fails on a broken statement', async () => {
      const [local, distributed] = createStatements(layoutOf('batches')).slice(1, 3) as [string, string];
      // (1) ON CLUSTER after the engine: not a statement.
      const misplaced = local.replace(ON_CLUSTER, '') + ON_CLUSTER;
      await assert.rejects(assertParses(misplaced), /Syntax error/);
      // (2) is_deleted on a String column, and an ORDER BY of a column that does not exist.
      await assert.rejects(
        assertValidUpToKeeper(local.replace('`_offset`, `_deleted`)', '`_offset`, `_content_hash`)')),
        /BAD_TYPE_OF_FIELD/,
      );
      await assert.rejects(
        assertValidUpToKeeper(local.replace('ORDER BY (`id`', 'ORDER BY (`nope`')),
        /UNKNOWN_IDENTIFIER|NO_SUCH_COLUMN_IN_TABLE/,
      );
      // (3) A Distributed table sharded by a String: refused when created.
      const broken = withoutKeeper(distributed)
        .replace('`batches`', '`batches_broken`')
        .replace('cityHash64(`id`)', '`_content_hash`');
      assert.notEqual(broken, withoutKeeper(distributed));
      assert.match((await refusal(broken))!, /integer type/);
    });

    test('applySchema of every resource runs, the inserts go through the Distributed tables, _current reads them', async () => {
      const sink = keeperless();
      for (const r of RESOURCES) {
        const statements = await applySchema(sink, layoutOf(r));
        assert.ok(statements.length > 0);
        for (const s of statements) assert.ok(s.includes(ON_CLUSTER), s);
      }
      // Nothing runs ON CLUSTER again when everything exists.
      for (const r of RESOURCES) assert.deepEqual(await applySchema(sink, layoutOf(r)), []);
      const engines = new Map(
        (
          await select<{ name: string; engine: string; engine_full: string }>(
            `SELECT name, engine, engine_full FROM system.tables WHERE database = '${db}'`,
          )
        ).map((t) => [t.name, t]),
      );
      for (const r of RESOURCES) {
        const layout = layoutOf(r);
        for (const t of [layout.table, ...layout.children]) {
          assert.equal(engines.get(localTableName(t.name))?.engine, 'ReplacingMergeTree', t.name);
          assert.match(
            engines.get(t.name)!.engine_full,
            new RegExp(`^Distributed\\('${CLUSTER}', '${db}', '${t.name}_local', cityHash64\\(`),
          );
        }
        for (const v of layout.views) assert.equal(engines.get(v.name)?.engine, 'View', v.name);
      }

      for (const r of RESOURCES) {
        const layout = layoutOf(r);
        await insert(layout, SAMPLES[r]);
        // insert_distributed_sync=1: the rows are in the local tables when the insert returns.
        for (const t of [layout.table, ...layout.children]) {
          const count = async (table: string) =>
            Number((await select<{ n: string }>(`SELECT count() AS n FROM \`${db}\`.\`${table}\``))[0]!.n);
          assert.equal(await count(localTableName(t.name)), await count(t.name), t.name);
        }
        const latest = new Map<string, Record<string, unknown>>();
        for (const s of SAMPLES[r]) {
          const decoded = avroType(r).fromBuffer(avroType(r).toBuffer(s)) as Record<string, unknown>;
          const stored = withStoredKey(r, decoded);
          latest.set(entityKey(r, stored), stored);
        }
        const live = [...latest.values()].filter((s) => !s._deleted);
        const current = await select<Record<string, unknown>>(`SELECT * FROM \`${db}\`.\`${r}_current\``);
        assert.deepEqual(
          current.map((row) => entityKey(r, row)).sort(),
          live.map((s) => entityKey(r, s)).sort(),
          `${r}_current`,
        );
        for (const child of layout.children) {
          const [n] = await select<{ n: string }>(
            `SELECT count() AS n FROM \`${db}\`.\`${child.name}_current\``,
          );
          const items = live.reduce((k, s) => k + (s[child.field] as unknown[]).length, 0);
          assert.equal(Number(n!.n), items, `${child.name}_current`);
        }
      }
    });

    test('a new field: ALTER of the local table, RENAME swaps of the Distributed table and the view', async () => {
      const v2 = withNewFields('batches');
      const layout = layoutOf('batches', db, v2);
      const statements = await applySchema(keeperless(), layout);
      const [, swapView] = replaceViewStatements(layout, layout.views[0]!);
      const [, swapTable] = replaceDistributedStatements(db, layout.table, CLUSTER, layout.table.orderBy);
      assert.deepEqual(
        statements.filter((s) => s.startsWith('ALTER') || s.startsWith('RENAME')),
        [
          `ALTER TABLE \`${db}\`.\`batches_local\`${ON_CLUSTER} ADD COLUMN \`owner_email\` Nullable(String)`,
          `ALTER TABLE \`${db}\`.\`batches_local\`${ON_CLUSTER} ADD COLUMN \`archived_at_ms\` Nullable(Int64)`,
          `ALTER TABLE \`${db}\`.\`batches_local\`${ON_CLUSTER} ADD COLUMN \`archived_at_dt\` Nullable(DateTime64(3, 'UTC')) MATERIALIZED fromUnixTimestamp64Milli(\`archived_at_ms\`, 'UTC')`,
          swapTable,
          swapView,
        ],
      );
      await insert(
        layout,
        [{ ...(SAMPLES.batches[0] as object), id: 7, owner_email: 'o@x', archived_at_ms: 1764140000123 }],
        v2,
      );
      assert.deepEqual(
        await select(
          `SELECT id, owner_email, toString(archived_at_dt) AS a FROM \`${db}\`.batches_current WHERE id = 7`,
        ),
        [{ id: '7', owner_email: 'o@x', a: '2025-11-26 06:53:20.123' }],
      );
      assert.deepEqual(await applySchema(keeperless(), layout), []);
    });

    test('the dashboard objects are created and read the cluster-wide data', async () => {
      const dash = uniqueName('itclcurdash_');
      const { failed } = await createDashboardViews(keeperless(), dash, { features });
      assert.deepEqual(failed, [], 'nothing refused');
      for (const o of dashboardObjects(dash, CLUSTER)) {
        const [n] = await select<{ n: string }>(
          `SELECT count() AS n FROM system.tables WHERE database = '${dash}' AND name = '${o.name}'`,
        );
        assert.equal(Number(n!.n), 1, o.name);
      }
      const T = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
      const layout = (r: ResourceName) => layoutOf(r, dash);
      const base = (r: ResourceName, i: number) => SAMPLES[r][i] as Record<string, unknown>;
      await insert(layout('runs'), [
        { ...base('runs', 0), id: 'r1', status: 'COMPLETE', _deleted: false },
        { ...base('runs', 0), id: 'r2', status: 'FAILED', _deleted: false },
      ]);
      const audit = (hash: string, ms: number) => ({
        ...base('audit_logs', 0),
        _content_hash: hash,
        timestamp_ms: ms,
        log_type: 'login',
        email: 'a@x',
        _deleted: false,
      });
      await insert(layout('audit_logs'), [audit('e1', T + 1_000), audit('e2', T + 2_000)]);
      await insert(layout('audit_logs'), [audit('e1', T + 1_000)]); // redelivered
      const runs = await select<{ status: string; runs: string }>(
        `SELECT status, sum(runs) AS runs FROM \`${dash}\`.${RUNS_BY_STATUS} GROUP BY status ORDER BY status`,
      );
      assert.deepEqual(runs, [
        { status: 'COMPLETE', runs: '1' },
        { status: 'FAILED', runs: '1' },
      ]);
      // The materialized view on audit_logs_local filled the local aggregate; read through the Distributed.
      assert.deepEqual(
        await select(
          `SELECT toUInt32(minute) AS m, log_type, email, events FROM \`${dash}\`.${AUDIT_PER_MINUTE} ORDER BY m`,
        ),
        [{ m: T / 1000, log_type: 'login', email: 'a@x', events: '2' }],
      );
      // The aggregate was made by this call, so the audit rows already there were aggregated into it.
      assert.ok(ran.some((s) => s.startsWith(`INSERT INTO \`${dash}\`.\`${AUDIT_PER_MINUTE_STATE}\``)));
    });

    test('every statement the sinks ran is one of the generated, and parses with its ON CLUSTER', async () => {
      const generated = new Set(clusterStatements(db, features));
      assert.ok(ran.length > 100, `${ran.length}`);
      for (const s of ran) {
        if (s.includes(`\`${db}\``)) assert.ok(generated.has(s), `not among the parsed: ${s}`);
        await assertParses(s);
      }
    });
  },
);

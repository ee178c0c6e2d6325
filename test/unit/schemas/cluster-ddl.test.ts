// The DDL for a ClickHouse cluster (CLICKHOUSE_CLUSTER): replicated local tables, a Distributed table
// per table sharded by the resource key, views over the Distributed tables, ALTERs ON CLUSTER; and the
// single-server DDL, unchanged when no cluster is set. test/integration/clickhouse-cluster.test.ts runs
// these statements on a two-replica 18.16 cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCES, valueSchema } from '../../../schemas/index.ts';
import { deriveLayout } from '../../../sinks/schema/layout.ts';
import {
  LEGACY_FEATURES,
  featuresFor,
  insertSettings,
  withCluster,
  type ServerFeatures,
} from '../../../sinks/schema/features.ts';
import {
  createStatements,
  planAlter,
  replaceDistributedStatements,
  type ExistingColumn,
} from '../../../sinks/schema/ddl.ts';
import { dashboardObjects } from '../../../sinks/views.ts';

const DB = 'instabase';
const CLUSTER = 'ib_cluster';
const CURRENT = featuresFor([25, 8]);

const layoutOf = (resource: (typeof RESOURCES)[number], features: ServerFeatures) =>
  deriveLayout(resource, valueSchema(resource), { database: DB, features });

test('without a cluster, withCluster changes nothing and the DDL is the single-server DDL', () => {
  for (const base of [LEGACY_FEATURES, CURRENT]) {
    assert.equal(withCluster(base, undefined), base);
    for (const r of RESOURCES) {
      const statements = createStatements(layoutOf(r, withCluster(base, undefined))).join('\n');
      assert.equal(statements, createStatements(layoutOf(r, base)).join('\n'));
      assert.doesNotMatch(statements, /ON CLUSTER|Replicated|Distributed|GLOBAL IN|_local/);
    }
    assert.equal(
      dashboardObjects(DB, undefined)
        .map((o) => o.create)
        .join('\n'),
      dashboardObjects(DB)
        .map((o) => o.create)
        .join('\n'),
    );
  }
});

test('on a cluster every resource table is a replicated _local table and a Distributed table sharded by the key', () => {
  for (const base of [LEGACY_FEATURES, CURRENT]) {
    for (const r of RESOURCES) {
      const layout = layoutOf(r, withCluster(base, CLUSTER));
      const statements = createStatements(layout);
      assert.equal(statements[0], `CREATE DATABASE IF NOT EXISTS \`${DB}\` ON CLUSTER \`${CLUSTER}\``);
      for (const statement of statements) assert.match(statement, / ON CLUSTER `ib_cluster`/, statement);
      const key = layout.table.orderBy.map((k) => '`' + k + '`').join(', ');
      for (const t of [layout.table, ...layout.children]) {
        const local = statements.find((s) =>
          s.startsWith(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`${t.name}_local\``),
        );
        assert.ok(local, `${t.name}_local`);
        const deleted = t === layout.table && base.replacingIsDeleted ? ', `_deleted`' : '';
        assert.ok(
          local.includes(
            `ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/${DB}/${t.name}_local', '{replica}', \`_offset\`${deleted})`,
          ),
          local,
        );
        // Replicated tables deduplicate blocks themselves; the non-replicated window does not apply.
        assert.doesNotMatch(local, /non_replicated_deduplication_window/);
        const dist = statements.find((s) =>
          s.startsWith(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`${t.name}\` `),
        );
        assert.ok(dist, t.name);
        assert.ok(
          dist.endsWith(`ENGINE = Distributed('${CLUSTER}', '${DB}', '${t.name}_local', cityHash64(${key}))`),
          dist,
        );
        assert.doesNotMatch(dist, /CODEC/);
        // The Distributed table has the local table's columns, in the same order.
        const names = (s: string) => [...s.matchAll(/^ {2}`([^`]+)`/gm)].map((m) => m[1]);
        assert.deepEqual(names(dist), names(local));
        assert.ok(statements.indexOf(local) < statements.indexOf(dist), 'the local table first');
      }
      for (const v of layout.views) {
        const view = statements.find((s) =>
          s.startsWith(`CREATE VIEW IF NOT EXISTS \`${DB}\`.\`${v.name}\``),
        );
        assert.ok(view, v.name);
        // Views read the Distributed table: the cluster's data, not one server's.
        assert.ok(view.includes(`FROM \`${DB}\`.\`${v.table}\` FINAL`), view);
        if (v.table !== layout.table.name) assert.match(view, /\) GLOBAL IN \(SELECT /);
      }
    }
  }
});

test('cluster inserts are synchronous through the Distributed table; single-server inserts are as before', () => {
  assert.equal(insertSettings(LEGACY_FEATURES, 'tok'), undefined);
  assert.deepEqual(insertSettings(withCluster(LEGACY_FEATURES, CLUSTER), 'tok'), {
    insert_distributed_sync: '1',
  });
  assert.deepEqual(insertSettings(withCluster(CURRENT, CLUSTER), 'tok'), {
    insert_deduplication_token: 'tok',
    async_insert: '0',
    insert_distributed_sync: '1',
  });
  assert.equal(withCluster(CURRENT, CLUSTER).dedupWindow, 0);
});

test('ADD COLUMN runs ON CLUSTER on the local table (with its codec) and on the Distributed table', () => {
  const layout = layoutOf('runs', withCluster(CURRENT, CLUSTER));
  const table = layout.table;
  const existing: ExistingColumn[] = table.columns
    .filter((c) => c.name !== '_raw_json')
    .map((c) => ({
      name: c.name,
      type: c.type,
      default_kind:
        c.source === 'materialized'
          ? 'MATERIALIZED'
          : c.source === 'alias'
            ? 'ALIAS'
            : c.expression
              ? 'DEFAULT'
              : '',
    }));
  assert.deepEqual(planAlter(DB, table, existing, { cluster: CLUSTER, distributed: false }), [
    'ALTER TABLE `instabase`.`runs_local` ON CLUSTER `ib_cluster` ADD COLUMN `_raw_json` String CODEC(ZSTD(3))',
  ]);
  assert.deepEqual(planAlter(DB, table, existing, { cluster: CLUSTER, distributed: true }), [
    'ALTER TABLE `instabase`.`runs` ON CLUSTER `ib_cluster` ADD COLUMN `_raw_json` String',
  ]);
  assert.deepEqual(planAlter(DB, table, existing), [
    'ALTER TABLE `instabase`.`runs` ADD COLUMN `_raw_json` String CODEC(ZSTD(3))',
  ]);
});

test('dashboard objects on a cluster: ON CLUSTER, and the audit aggregate replicated behind a Distributed table', () => {
  const objects = dashboardObjects(DB, CLUSTER);
  for (const o of objects) {
    for (const s of [...(o.before ?? []), o.create]) assert.match(s, / ON CLUSTER `ib_cluster`/, o.name);
  }
  const state = objects.find((o) => o.name === 'dash_audit_events_per_minute_state');
  assert.ok(state);
  assert.ok(
    state?.before?.[0]?.includes(
      "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/instabase/dash_audit_events_per_minute_state_local', '{replica}')",
    ),
  );
  assert.ok(
    state.create.endsWith(
      "ENGINE = Distributed('ib_cluster', 'instabase', 'dash_audit_events_per_minute_state_local', rand())",
    ),
  );
  const mv = objects.find((o) => o.name === 'dash_audit_events_per_minute_mv');
  assert.ok(mv);
  assert.ok(mv.create.includes('TO `instabase`.`dash_audit_events_per_minute_state_local`'));
  assert.ok(mv.create.includes('FROM `instabase`.`audit_logs_local`'));
});

test('a Distributed table gets new columns by a swap ON CLUSTER (18.16 refuses its ALTER ON CLUSTER)', () => {
  const layout = layoutOf('runs_results', withCluster(LEGACY_FEATURES, CLUSTER));
  const [create, rename, drop] = replaceDistributedStatements(
    DB,
    layout.table,
    CLUSTER,
    layout.table.orderBy,
  );
  const tag = /runs_results__new_([0-9a-f]{8})/.exec(create ?? '')?.[1];
  assert.ok(tag, create);
  assert.ok(
    create?.startsWith(
      `CREATE TABLE IF NOT EXISTS \`instabase\`.\`runs_results__new_${tag}\` ON CLUSTER \`ib_cluster\` (`,
    ),
  );
  // The replacement still reads the one replicated table, sharded as before.
  assert.ok(
    create?.endsWith(
      `Distributed('ib_cluster', 'instabase', 'runs_results_local', cityHash64(\`run_id\`, \`file_index\`, \`document_index\`))`,
    ),
    create,
  );
  assert.equal(
    rename,
    `RENAME TABLE \`instabase\`.\`runs_results\` TO \`instabase\`.\`runs_results__old_${tag}\`, ` +
      `\`instabase\`.\`runs_results__new_${tag}\` TO \`instabase\`.\`runs_results\` ON CLUSTER \`ib_cluster\``,
  );
  assert.equal(
    drop,
    `DROP TABLE IF EXISTS \`instabase\`.\`runs_results__old_${tag}\` ON CLUSTER \`ib_cluster\``,
  );
  // The same columns give the same names, so a retry after a crash reuses them.
  assert.deepEqual(replaceDistributedStatements(DB, layout.table, CLUSTER, layout.table.orderBy), [
    create,
    rename,
    drop,
  ]);
});

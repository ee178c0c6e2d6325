/**
 * The sinks on a ClickHouse cluster (CLICKHOUSE_CLUSTER): one shard of two 18.16 replicas and a
 * ZooKeeper, started by this file on ports of its own (stack/clickhouse-cluster.ts), beside the shared
 * Kafka and registry. The producers poll the simulator once; the sinks fill the cluster through the
 * Distributed tables; one replica is SIGKILLed while they write and restarted after; both replicas then
 * hold the same rows, and `_current` through the Distributed tables is the simulator's ground truth.
 * Last, the same insert sent twice (a flush retried after a lost acknowledgement) leaves one copy: the
 * replicated engine drops a block whose hash it has seen, on 18.16 too, where there are no dedup tokens.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import { cliNodeArgs } from '../../core/node-flags.ts';
import { RESOURCE_NAMES, type ResourceName } from '../../core/resources.ts';
import { resourceTopic } from '../../core/topics.ts';
import { resourceMeta, valueSchema, type AvroRecordSchema } from '../../schemas/index.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { decodeIntent } from '../../sinks/flush-intent.ts';
import { insertSettings, serverFeatures, withCluster } from '../../sinks/schema/features.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { CLICKHOUSE_SERVER } from '../../stack/clickhouse.ts';
import {
  DEFAULT_CLUSTER_NAME,
  ZOOKEEPER,
  clusterLayout,
  startClickHouseCluster,
  startMember,
  stopClickHouseCluster,
  type ClusterOptions,
} from '../../stack/clickhouse-cluster.ts';
import { readPidFile } from '../../stack/process.ts';
import type { Simulator } from '../../sim/index.ts';
import { builtModule } from '../helpers/built.ts';
import { quietLogger, uniqueName, waitFor } from '../helpers/pipeline.ts';
import { freePort } from '../helpers/sink-clickhouse.ts';
import {
  SMALL_SCALE,
  cleanUp,
  expectedRows,
  highWaterMarks,
  pipelineConfig,
  produceOnce,
  scalar,
  select,
  startSim,
  testClickHouse,
  type ExpectedRows,
} from '../helpers/sink-pipeline.ts';
import { daemonEnv } from '../helpers/daemon-env.ts';

const q = (name: string) => '`' + name + '`';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Made by the cluster's first start (nothing is written when the file is skipped).
const dir = path.join(os.tmpdir(), `ibs-ch-cluster-${process.pid}`);
const cluster: ClusterOptions = {
  dir,
  replicas: 2,
  // Below Linux's ephemeral range (32768-60999), where any outgoing connection may hold a port for a
  // while; replicas need consecutive ports, so free ports picked one at a time would not do.
  ports: { zookeeper: 21181, httpBase: 21123, tcpBase: 21200, interserverBase: 21300 },
  healthTimeoutMs: 90_000,
};
const [, replica1, replica2] = clusterLayout(cluster);

/** Without the programs and no way to install them, the test cannot run here. */
function unavailable(): string | undefined {
  const missing = [ZOOKEEPER, CLICKHOUSE_SERVER].filter((r) => !r.present());
  if (missing.length === 0) return undefined;
  if (process.getuid?.() === 0 && process.env.STACK_AUTO_INSTALL !== '0') return undefined;
  return `needs ${missing.flatMap((r) => r.apt).join(' ')} (apt-get install as root)`;
}
const skip = unavailable();

/** The tables of every resource: main and child tables, by name. */
function tablesOf(resource: ResourceName): string[] {
  const l = deriveLayout(resource, valueSchema(resource), { database: 'x' });
  return [l.table.name, ...l.children.map((c) => c.name)];
}

/** What a replica holds of a local table: row count and a sum over the Kafka positions of its rows. */
async function fingerprint(ch: ClickHouseClient, db: string, table: string): Promise<string> {
  const [row] = await select<{ n: string; s: string }>(
    ch,
    `SELECT count() AS n, sum(cityHash64(_partition, _offset)) AS s FROM ${q(db)}.${q(`${table}_local`)}`,
  );
  return `${row?.n}/${row?.s}`;
}

/**
 * Copies every active part of a stopped replica's table twice, under block numbers past any insert's:
 * parts the replica has on disk but ZooKeeper does not know, as a kill inside a write leaves them, and
 * more rows of them than the table holds otherwise. Returns how many parts it wrote.
 */
function plantUnexpectedParts(tableDir: string): number {
  const parts = fs
    .readdirSync(tableDir)
    .map((name) => ({ name, m: /^(.+)_(\d+)_(\d+)_(\d+)$/.exec(name) }))
    .filter(
      (p) => p.m && !p.name.startsWith('tmp') && fs.statSync(path.join(tableDir, p.name)).isDirectory(),
    );
  let block = 1_000_000_000;
  for (let copy = 0; copy < 2; copy++) {
    for (const p of parts) {
      block++;
      fs.cpSync(path.join(tableDir, p.name), path.join(tableDir, `${p.m![1]}_${block}_${block}_0`), {
        recursive: true,
      });
    }
  }
  return parts.length * 2;
}

describe(
  'sinks on a ClickHouse cluster: replicas converge, _current is the ground truth',
  {
    timeout: 420_000,
    skip: skip ? `cannot start a local ClickHouse cluster: ${skip}` : false,
  },
  () => {
    let sim: Simulator;
    let config: Config;
    let expected: ExpectedRows;
    let ch1: ClickHouseClient;
    let ch2: ClickHouseClient;
    const prefix = uniqueName('itcl');

    before(async () => {
      const env = await startClickHouseCluster(cluster);
      sim = await startSim('cluster-it', SMALL_SCALE, 0);
      const base = pipelineConfig(prefix, sim, { sinks: { flushRows: 25, flushMs: 50 } });
      // The shared stack's Kafka and registry, this file's ClickHouse cluster.
      config = {
        ...base,
        clickhouse: { ...base.clickhouse, url: env.CLICKHOUSE_URL, cluster: env.CLICKHOUSE_CLUSTER },
      };
      ch1 = testClickHouse(config, replica1!.http);
      ch2 = testClickHouse(config, replica2!.http);
      await produceOnce(config, sim);
      expected = expectedRows(sim, SMALL_SCALE);
    });
    after(async () => {
      await ch1?.close();
      await ch2?.close();
      await sim?.close();
      if (config) await cleanUp(config);
      await stopClickHouseCluster(dir, () => undefined, cluster);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('a replica killed mid-stream catches up; both hold the same rows; _current is exact', async () => {
      const db = config.clickhouse.database;
      const first: ResourceName[] = RESOURCE_NAMES.filter((r) => r !== 'audit_logs');
      const later: ResourceName[] = ['audit_logs'];
      const sinksA = await startSinks(config, quietLogger, { resources: first });
      let sinksB: Awaited<ReturnType<typeof startSinks>> | undefined;
      try {
        // Mid-stream: as soon as the first rows have reached replica 2, it dies without a chance to
        // flush anything.
        await waitFor(
          'the first rows on replica 2',
          async () => {
            const n = await scalar(ch2, `SELECT count() AS n FROM ${q(db)}.${q('batches_local')}`).catch(
              () => 0,
            );
            return n > 0;
          },
          60_000,
        );
        const rec = readPidFile(replica2!.pidFile);
        assert.ok(rec, 'replica 2 runs');
        process.kill(-rec.pid, 'SIGKILL');
        await waitFor(
          'replica 2 to be gone',
          async () => {
            try {
              process.kill(rec.pid, 0);
              return false;
            } catch {
              return true;
            }
          },
          10_000,
        );
        // And a resource written only while it is down, so the outage certainly misses inserts.
        sinksB = await startSinks(config, quietLogger, { resources: later, groupId: `${prefix}-later` });
        const marksA = await highWaterMarks(
          config,
          first.map((r) => resourceTopic(config, r)),
        );
        const marksB = await highWaterMarks(
          config,
          later.map((r) => resourceTopic(config, r)),
        );
        await waitFor(
          'the sinks to catch up with replica 2 down',
          async () => (await sinksA.runner.caughtUp(marksA)) && (await sinksB!.runner.caughtUp(marksB)),
          180_000,
        );
        assert.equal(sinksA.runner.failure, undefined);
        assert.equal(sinksB.runner.failure, undefined);
        assert.equal(sinksA.runner.stats.deadLetters + sinksB.runner.stats.deadLetters, 0, 'no dead letters');
      } finally {
        await sinksA.stop();
        await sinksB?.stop();
      }

      // Every audit row was inserted while replica 2 was down: what it has of them, it fetches after.
      const auditOn1 = await scalar(ch1, `SELECT count() AS n FROM ${q(db)}.${q('audit_logs_local')}`);
      assert.equal(auditOn1, expected.records.audit_logs, 'audit_logs on replica 1 during the outage');
      // A kill can leave parts ZooKeeper never saw; the replica then refuses to start unless the stack
      // restores it. That happens only when the kill falls inside a write, so make it certain: two
      // copies of every part of batches_local, under block numbers no insert has.
      const planted = plantUnexpectedParts(
        path.join(path.dirname(replica2!.marker), 'data', 'data', db, 'batches_local'),
      );
      assert.ok(planted > 0, 'replica 2 held parts of batches_local when it was killed');
      await startMember(cluster, replica2!);
      const tables = RESOURCE_NAMES.flatMap(tablesOf);
      await waitFor(
        'both replicas to hold the same rows',
        async () => {
          for (const t of tables) {
            const [a, b] = await Promise.all([fingerprint(ch1, db, t), fingerprint(ch2, db, t)]);
            if (a !== b) return false;
          }
          return true;
        },
        120_000,
      );

      for (const resource of RESOURCE_NAMES) {
        const want = expected.records[resource];
        assert.ok(want > 0, `${resource}: the simulator serves some records`);
        const key = resourceMeta(resource).key.map(q).join(', ');
        for (const [name, ch] of [
          ['replica 1', ch1],
          ['replica 2', ch2],
        ] as const) {
          // Through the Distributed tables, from either server.
          const current = await scalar(ch, `SELECT count() AS n FROM ${q(db)}.${q(`${resource}_current`)}`);
          assert.equal(current, want, `${resource}_current on ${name}`);
          const keys = await scalar(
            ch,
            `SELECT uniqExact(${key}) AS n FROM ${q(db)}.${q(`${resource}_current`)}`,
          );
          assert.equal(keys, want, `${resource}: distinct keys on ${name}`);
          // Each replica's own copy: every record once.
          const local = await scalar(ch, `SELECT count() AS n FROM ${q(db)}.${q(`${resource}_local`)}`);
          assert.equal(local, want, `${resource}_local on ${name}`);
        }
      }
      const fields = await scalar(
        ch2,
        `SELECT count() AS n FROM ${q(db)}.${q('runs_results_fields_current')}`,
      );
      assert.equal(fields, expected.runsResultsFields, 'runs_results_fields_current');
      // The dashboard views read the cluster too: the raw counts per resource, and the audit aggregate,
      // filled on the server the inserts landed on and replicated to the other.
      const freshness = await select<{ resource: string; rows: string }>(
        ch2,
        `SELECT resource, rows FROM ${q(db)}.${q('dash_pipeline_freshness')}`,
      );
      for (const resource of RESOURCE_NAMES) {
        const row = freshness.find((r) => r.resource === resource);
        assert.equal(Number(row?.rows), expected.records[resource], `dash_pipeline_freshness: ${resource}`);
      }
      const events = await scalar(
        ch2,
        `SELECT sum(events) AS n FROM ${q(db)}.${q('dash_audit_events_per_minute')}`,
      );
      // Never an event twice (the state counts distinct content hashes). One block fewer has been seen
      // once, in CI, when the replica died inside an insert: most likely 18.16 wrote the audit part but
      // not the view's, and the retried block, recognised by the replicated audit table, did not reach
      // the view again (18.16 has no deduplicate_blocks_in_dependent_materialized_views). That run lost
      // exactly one flush (25 events); the audit tables themselves were exact.
      const flushRows = 25;
      assert.ok(
        events <= expected.records.audit_logs && events >= expected.records.audit_logs - flushRows,
        `dash_audit_events_per_minute: ${events} events for ${expected.records.audit_logs}, at most one flush short`,
      );
    });

    test('the same insert twice (a retried flush) is stored once by the replicated engine', async () => {
      const db = config.clickhouse.database;
      const features = withCluster(await serverFeatures(ch1), DEFAULT_CLUSTER_NAME);
      // Rows of a real table at positions no record has, so they are told apart from the sinks' rows.
      const rows = await select<Record<string, unknown>>(
        ch1,
        `SELECT * FROM ${q(db)}.${q('batches')} ORDER BY _offset LIMIT 20`,
      );
      assert.ok(rows.length > 0);
      const probe = rows.map((r) => ({ ...r, _partition: 999 }));
      for (let i = 0; i < 2; i++) {
        await ch1.insert({
          table: `${q(db)}.${q('batches')}`,
          values: probe,
          format: 'JSONEachRow',
          clickhouse_settings: insertSettings(features, undefined) as Record<string, string>,
        });
      }
      for (const [name, ch] of [
        ['replica 1', ch1],
        ['replica 2', ch2],
      ] as const) {
        await waitFor(
          `the probe rows on ${name}`,
          async () =>
            (await scalar(
              ch,
              `SELECT count() AS n FROM ${q(db)}.${q('batches_local')} WHERE _partition = 999`,
            )) >= probe.length,
          30_000,
        );
        const n = await scalar(
          ch,
          `SELECT count() AS n FROM ${q(db)}.${q('batches_local')} WHERE _partition = 999`,
        );
        assert.equal(n, probe.length, `${name}: one copy of the block`);
      }
    });

    test('a sink SIGKILLed between its insert and its offset commit: the rebuilt flush is the same block, dropped by the replicated engine; no row twice', async () => {
      // A database and group of its own, so that the rows the other tests loaded do not count.
      const database = `${config.clickhouse.database}_kill`;
      const group = `${config.sinks.group}-kill`;
      const killed: Config = {
        ...config,
        clickhouse: { ...config.clickhouse, database },
        sinks: { ...config.sinks, group },
      };
      const topic = resourceTopic(config, 'audit_logs');
      const duplicatedBlocks = async () =>
        (await scalar(
          ch1,
          `SELECT sum(value) AS n FROM system.events WHERE event = 'DuplicatedInsertedBlocks'`,
        )) +
        (await scalar(
          ch2,
          `SELECT sum(value) AS n FROM system.events WHERE event = 'DuplicatedInsertedBlocks'`,
        ));
      const before = await duplicatedBlocks();
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-cluster-kill-'));
      try {
        const configFile = path.join(work, 'config.json');
        fs.writeFileSync(
          configFile,
          JSON.stringify({ sinks: { flushRows: 25, flushMs: 50, retryMaxMs: 2_000 } }),
        );
        // The process kills itself right after its fourth insert has landed, before it commits.
        const child = spawn(
          process.execPath,
          cliNodeArgs(
            builtModule('cli/main.ts'),
            ['--config', configFile],
            ['sinks', '--resources', 'audit_logs'],
          ),
          {
            cwd: ROOT,
            stdio: ['ignore', 'ignore', fs.openSync(path.join(work, 'sink.log'), 'a')],
            env: daemonEnv(killed, {
              LOG_LEVEL: 'warn',
              HTTP_PORT: String(await freePort()),
              IBS_FAILPOINTS: 'sink.after-insert=4',
            }),
          },
        );
        const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
          child.once('exit', (_code, sig) => resolve(sig)),
        );
        assert.equal(
          signal,
          'SIGKILL',
          `the sink died at its failpoint (log: ${path.join(work, 'sink.log')})`,
        );
        // The kill fell between the insert and the commit: the group holds the flush's intent.
        const admin = createKafka(config, quietLogger, 'test').admin();
        await admin.connect();
        const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        await admin.disconnect();
        const intents = (offsets?.partitions ?? []).filter((p) => decodeIntent(p.metadata));
        assert.ok(intents.length > 0, `an intent is committed: ${JSON.stringify(offsets?.partitions)}`);
        const landed = await scalar(ch1, `SELECT count() AS n FROM ${q(database)}.${q('audit_logs')}`);
        assert.ok(landed > 0, 'the killed sink had inserted rows');

        // No merges from here on: ReplacingMergeTree would fold a duplicate away and hide it.
        for (const ch of [ch1, ch2])
          await ch.command({ query: `SYSTEM STOP MERGES ${q(database)}.${q('audit_logs_local')}` });
        // Started again (in this process this time), it reads the intent, rebuilds the same flush and
        // sends it again: the replicated engine recognises the block and drops it.
        const sinks = await startSinks(killed, quietLogger, { resources: ['audit_logs'] });
        try {
          const marks = await highWaterMarks(killed, [topic]);
          await waitFor('the restarted sink to catch up', () => sinks.runner.caughtUp(marks), 120_000);
          assert.equal(sinks.runner.failure, undefined);
        } finally {
          await sinks.stop();
        }
        const want = expected.records.audit_logs;
        for (const [name, ch] of [
          ['replica 1', ch1],
          ['replica 2', ch2],
        ] as const) {
          await waitFor(
            `every audit row on ${name}`,
            async () =>
              (await scalar(ch, `SELECT count() AS n FROM ${q(database)}.${q('audit_logs_local')}`)) >= want,
            60_000,
          );
          const [row] = await select<{ n: string; distinct: string }>(
            ch,
            `SELECT count() AS n, uniqExact(_partition, _offset) AS distinct FROM ${q(database)}.${q('audit_logs_local')}`,
          );
          assert.deepEqual(
            { rows: Number(row?.n), distinct: Number(row?.distinct) },
            { rows: want, distinct: want },
            `${name}: every record once, none twice`,
          );
        }
        assert.ok((await duplicatedBlocks()) > before, 'the replicated engine dropped the retried block');
      } finally {
        await ch1.command({
          query: `DROP DATABASE IF EXISTS ${q(database)} ON CLUSTER ${q(config.clickhouse.cluster!)}`,
        });
        fs.rmSync(work, { recursive: true, force: true });
      }
    });

    test('a new field reaches both replicas: the replicated table, the Distributed table and _current', async () => {
      const db = config.clickhouse.database;
      const features = withCluster(await serverFeatures(ch1), DEFAULT_CLUSTER_NAME);
      const schema = valueSchema('runs') as AvroRecordSchema;
      const wider: AvroRecordSchema = {
        ...schema,
        fields: [...schema.fields, { name: 'cluster_note', type: ['null', 'string'], default: null }],
      };
      const ran = await applySchema(ch1, deriveLayout('runs', wider, { database: db, features }));
      assert.ok(
        ran.some((s) => s.startsWith(`ALTER TABLE ${q(db)}.${q('runs_local')} ON CLUSTER`)),
        ran.join('\n'),
      );
      for (const [name, ch] of [
        ['replica 1', ch1],
        ['replica 2', ch2],
      ] as const) {
        const tables = await select<{ table: string }>(
          ch,
          `SELECT table FROM system.columns WHERE database = '${db}' AND name = 'cluster_note' ORDER BY table`,
        );
        assert.deepEqual(
          tables.map((t) => t.table),
          ['runs', 'runs_current', 'runs_local'],
          name,
        );
        // The Distributed table still reads every row, through the new column too.
        const n = await scalar(
          ch,
          `SELECT count() AS n FROM ${q(db)}.${q('runs_current')} WHERE cluster_note IS NULL`,
        );
        assert.equal(n, expected.records.runs, `runs_current on ${name}`);
      }
      // Nothing left over from the swaps.
      const leftovers = await scalar(
        ch2,
        `SELECT count() AS n FROM system.tables WHERE database = '${db}' AND (position(name, '__new_') > 0 OR position(name, '__old_') > 0)`,
      );
      assert.equal(leftovers, 0);
    });
  },
);

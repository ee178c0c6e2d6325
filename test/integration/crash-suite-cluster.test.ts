/**
 * The ground-truth crash suite (test/helpers/crash-run.ts, as in crash-suite.test.ts) against a
 * ClickHouse cluster: the same producers, sinks, scale and kill plan, but ClickHouse is a private
 * cluster of two 18.16 replicas of one shard with a ZooKeeper, and the sinks write through
 * CLICKHOUSE_CLUSTER (Replicated `<t>_local`, Distributed `<t>`, `_current` over them). The sinks talk
 * to replica 1. The plan's 'clickhouse' kills alternate between the replicas: a SIGKILL of replica 1 is
 * an outage the sinks wait out; one of replica 2 leaves it to catch up through replication. Each
 * killed replica is started again by the stack (with flags/force_restore_data).
 *
 * At quiescence: both replicas' `<t>_local` converge to the same rows, `<resource>_current` through the
 * Distributed tables equals the simulator's ground truth key for key read from either replica, and the
 * dead-letter topics are empty. The clean run then has the simulator delete a tenth of the batches and
 * a quarter of the conversations, kills four more times, and checks the same against the new ground
 * truth on both replicas. Printed, not asserted: per resource and replica, the raw rows of
 * `<resource>_local` against their distinct (_partition, _offset), i.e. how many redelivered records
 * reached a table and were not yet merged away (a lower bound: ReplacingMergeTree merges fold them), and
 * each replica's DuplicatedInsertedBlocks (retried flushes the replicated engine dropped whole).
 *
 * The broker and registry are a private stack on free ports; the cluster listens on 22xxx (the other
 * cluster test uses 21xxx), below Linux's ephemeral range, since replicas need consecutive ports.
 * CRASH_SEED=<n> repeats a run's kill plan; CRASH_CLUSTER_FAULTS=1 adds a run with the API fault knobs.
 */
import { after, before, describe, test } from 'node:test';
import { RESOURCE_NAMES, type ResourceName } from '../../core/resources.ts';
import { valueSchema } from '../../schemas/index.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import {
  CRASH_FAULTS,
  CRASH_SEED,
  crashRun,
  seconds,
  type CrashRunSpec,
  type CrashServices,
  type QuiescenceContext,
} from '../helpers/crash-run.ts';
import {
  PrivateClickHouseCluster,
  clusterUnavailable,
  duplicatedBlocks,
  localFingerprint,
  rawAndDistinct,
  repeatedPositions,
  replicationQueue,
} from '../helpers/private-clickhouse-cluster.ts';
import { PrivateStack } from '../helpers/private-stack.ts';
import { waitFor } from '../helpers/pipeline.ts';
import { testClickHouse } from '../helpers/sink-pipeline.ts';

const TAG = 'crash-suite-cluster';
const PORTS = { zookeeper: 22181, httpBase: 22123, tcpBase: 22200, interserverBase: 22300 };
const log = (line: string) => process.stderr.write(`[${TAG}] ${line}\n`);

/** Every table of a resource: the main table and its child tables. */
function tablesOf(resource: ResourceName): string[] {
  const l = deriveLayout(resource, valueSchema(resource), { database: 'x' });
  return [l.table.name, ...l.children.map((c) => c.name)];
}

const skip = clusterUnavailable();

describe(
  'crash suite on a ClickHouse cluster: random SIGKILLs (a replica among them), then every key exactly once on both replicas',
  { timeout: 20 * 60_000, skip: skip ? `cannot start a local ClickHouse cluster: ${skip}` : false },
  () => {
    let stack: PrivateStack | undefined;
    let cluster: PrivateClickHouseCluster | undefined;
    let services: CrashServices;

    before(async () => {
      const started = Date.now();
      // Kafka and the registry on free ports; ClickHouse is the cluster, not the stack's single server.
      const [s, c] = await Promise.allSettled([
        PrivateStack.start((l) => log(`stack: ${l}`), ['kafka', 'registry']),
        PrivateClickHouseCluster.start(2, PORTS, (l) => log(`cluster: ${l}`)),
      ]);
      // Kept before a failure is thrown, so that `after` stops whichever of the two did start.
      if (s.status === 'fulfilled') stack = s.value;
      if (c.status === 'fulfilled') cluster = c.value;
      if (s.status === 'rejected') throw s.reason;
      if (c.status === 'rejected') throw c.reason;
      const own = { stack: s.value, cluster: c.value };
      services = {
        endpoints: { ...own.stack.endpoints, CLICKHOUSE_URL: own.cluster.env.CLICKHOUSE_URL },
        clickhouseCluster: own.cluster.env.CLICKHOUSE_CLUSTER,
        ours: true,
        kill: async (target, nth) => {
          if (target === 'kafka') {
            await own.stack.kill('kafka');
            return 'kafka';
          }
          // Replica 2 first: the outage the sinks do not see, then the one they do.
          const index = (nth + 1) % own.cluster.replicas.length;
          await own.cluster.kill(index);
          return `clickhouse ${own.cluster.replicas[index]!.name}`;
        },
        restart: (target, nth) =>
          target === 'kafka'
            ? own.stack.restart('kafka')
            : own.cluster.restart((nth + 1) % own.cluster.replicas.length),
      };
      log(`private Kafka, registry and ClickHouse cluster up in ${seconds(Date.now() - started)}`);
    });

    after(async () => {
      await Promise.all([stack?.stop(), cluster?.stop()]);
    });

    /** Waits for the replicas to hold the same rows, then prints raw rows against distinct positions. */
    async function replicasConverge({ config, database, say }: QuiescenceContext): Promise<string[]> {
      const replicas = cluster!.replicas.map((r) => ({ name: r.name, ch: testClickHouse(config, r.http) }));
      const problems: string[] = [];
      try {
        const tables = RESOURCE_NAMES.flatMap(tablesOf);
        const started = Date.now();
        let differing: string[] = [];
        await waitFor(
          'both replicas to hold the same rows',
          async () => {
            try {
              differing = [];
              for (const r of replicas)
                if ((await replicationQueue(r.ch, database)) !== 0)
                  differing.push(`${r.name}: queue not empty`);
              for (const table of tables) {
                const prints = await Promise.all(
                  replicas.map((r) => localFingerprint(r.ch, database, table)),
                );
                if (new Set(prints).size > 1) differing.push(`${table}_local: ${prints.join(' vs ')}`);
              }
            } catch (err) {
              differing = [`not readable: ${(err as Error).message}`];
            }
            return differing.length === 0;
          },
          120_000,
        ).catch(() => {
          problems.push(`the replicas did not converge: ${differing.join('; ')}`);
        });
        say(
          problems.length
            ? problems[0]!
            : `replicas converged ${seconds(Date.now() - started)} after quiescence (every _local table the same on both)`,
        );
        for (const resource of RESOURCE_NAMES) {
          const figures = await Promise.all(
            replicas.map(async (r) => {
              const { rows, distinct } = await rawAndDistinct(r.ch, database, resource);
              const repeated = rows > distinct ? await repeatedPositions(r.ch, database, resource) : [];
              return (
                `${r.name} ${rows} rows / ${distinct} distinct (${rows - distinct} redelivered)` +
                (repeated.length ? ` [e.g. ${repeated.join('; ')}]` : '')
              );
            }),
          );
          say(`${resource}_local: ${figures.join('; ')}`);
        }
        const dropped = await Promise.all(
          replicas.map(async (r) => `${r.name} ${await duplicatedBlocks(r.ch)}`),
        );
        say(
          `retried blocks the replicated engine dropped (since each replica's last start): ${dropped.join('; ')}`,
        );
      } finally {
        for (const r of replicas) await r.ch.close();
      }
      return problems;
    }

    const run = (
      t: Parameters<typeof crashRun>[0],
      spec: Partial<CrashRunSpec> & Pick<CrashRunSpec, 'name' | 'seed' | 'flush'>,
    ) =>
      crashRun(t, {
        tag: TAG,
        // As the single-server suite: one broker kill, two ClickHouse kills (one per replica).
        perTarget: { producers: 3, sinks: 2, kafka: 1, clickhouse: 2 },
        services,
        readers: cluster!.replicas.map((r) => ({ name: r.name, url: r.http! })),
        atQuiescence: replicasConverge,
        ...spec,
      });

    test('clean API', { timeout: 10 * 60_000 }, async (t) => {
      await run(t, {
        name: 'crashc',
        seed: CRASH_SEED,
        flush: { flushRows: 20_000, flushMs: 100 },
        // Deletions as in the single-server suite: the tombstones must reach both replicas' `_current`.
        removals: { batches: 0.1, conversations: 0.25 },
        removalKills: { producers: 2, sinks: 1, kafka: 0, clickhouse: 1 },
      });
    });

    test(
      'API faults on (429, 5xx, resets, truncation)',
      { timeout: 10 * 60_000, skip: process.env.CRASH_CLUSTER_FAULTS ? false : 'CRASH_CLUSTER_FAULTS unset' },
      async (t) => {
        await run(t, {
          name: 'crashcf',
          seed: CRASH_SEED + 1,
          faults: CRASH_FAULTS,
          flush: { flushRows: 3_000, flushMs: 150 },
        });
      },
    );
  },
);

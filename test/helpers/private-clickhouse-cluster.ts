/**
 * A ClickHouse cluster of the test's own (stack/clickhouse-cluster.ts: replicas of one shard and a
 * ZooKeeper) in a temporary directory on the ports it is given, so that a test can SIGKILL a replica
 * without touching the shared stack or another test's cluster; and what a test reads off the replicas
 * to see that they converged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { CLICKHOUSE_SERVER } from '../../stack/clickhouse.ts';
import {
  ZOOKEEPER,
  clusterLayout,
  startClickHouseCluster,
  startMember,
  stopClickHouseCluster,
  type ClusterEnv,
  type ClusterOptions,
  type ClusterPorts,
  type ReplicaEndpoint,
} from '../../stack/clickhouse-cluster.ts';
import { readPidFile } from '../../stack/process.ts';
import { killGroup } from './private-stack.ts';
import { select } from './sink-pipeline.ts';

const q = (name: string) => '`' + name + '`';

/** Why a cluster cannot be started here (programs missing and no way to install them), or undefined. */
export function clusterUnavailable(): string | undefined {
  const missing = [ZOOKEEPER, CLICKHOUSE_SERVER].filter((r) => !r.present());
  if (missing.length === 0) return undefined;
  if (process.getuid?.() === 0 && process.env.STACK_AUTO_INSTALL !== '0') return undefined;
  return `needs ${missing.flatMap((r) => r.apt).join(' ')} (apt-get install as root)`;
}

export class PrivateClickHouseCluster {
  private constructor(
    readonly options: ClusterOptions,
    readonly env: ClusterEnv,
  ) {}

  /** The replicas, first to last (ZooKeeper is not one). */
  get replicas(): ReplicaEndpoint[] {
    return clusterLayout(this.options).slice(1);
  }

  static async start(
    replicas: number,
    ports: ClusterPorts,
    progress: (line: string) => void,
  ): Promise<PrivateClickHouseCluster> {
    const options: ClusterOptions = {
      dir: fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-ch-cluster-')),
      replicas,
      ports,
      healthTimeoutMs: 90_000,
      progress,
    };
    try {
      return new PrivateClickHouseCluster(options, await startClickHouseCluster(options));
    } catch (err) {
      await stopClickHouseCluster(options.dir, () => undefined, options).catch(() => undefined);
      fs.rmSync(options.dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** SIGKILL of the replica's process group (0-based index); waits until it is gone. */
  async kill(index: number): Promise<number> {
    const replica = this.replicas[index]!;
    const rec = readPidFile(replica.pidFile);
    if (!rec) throw new Error(`${replica.name} of the private cluster is not running`);
    await killGroup(rec.pid);
    return rec.pid;
  }

  /**
   * Starts a killed replica again with the stack's own function (which restores it with
   * flags/force_restore_data, since its pid file outlived it) and waits until it serves.
   */
  async restart(index: number): Promise<void> {
    await startMember(this.options, this.replicas[index]!);
  }

  async stop(): Promise<void> {
    await stopClickHouseCluster(this.options.dir, () => undefined, this.options);
    fs.rmSync(this.options.dir, { recursive: true, force: true });
  }
}

/** A replica's copy of a table: its rows, and a sum over their Kafka positions (order-independent). */
export async function localFingerprint(
  ch: ClickHouseClient,
  database: string,
  table: string,
): Promise<string> {
  const [row] = await select<{ n: string; s: string }>(
    ch,
    `SELECT count() AS n, sum(cityHash64(_partition, _offset)) AS s FROM ${q(database)}.${q(`${table}_local`)}`,
  );
  return `${row?.n}/${row?.s}`;
}

/**
 * Raw rows of a replica's `<table>_local` and how many distinct Kafka positions they hold: rows past
 * the distinct count are records that reached the table more than once and are not merged away yet.
 */
export async function rawAndDistinct(
  ch: ClickHouseClient,
  database: string,
  table: string,
): Promise<{ rows: number; distinct: number }> {
  const [row] = await select<{ n: string; d: string }>(
    ch,
    `SELECT count() AS n, uniqExact(_partition, _offset) AS d FROM ${q(database)}.${q(`${table}_local`)}`,
  );
  return { rows: Number(row?.n ?? NaN), distinct: Number(row?.d ?? NaN) };
}

/** Entries waiting in a replica's replication queue over the database's tables. */
export async function replicationQueue(ch: ClickHouseClient, database: string): Promise<number> {
  const [row] = await select<{ n: string }>(
    ch,
    `SELECT sum(queue_size) AS n FROM system.replicas WHERE database = '${database}'`,
  );
  return Number(row?.n ?? NaN);
}

/** Inserted blocks the replicated engine dropped as already seen, since the server's last start. */
export async function duplicatedBlocks(ch: ClickHouseClient): Promise<number> {
  const [row] = await select<{ n: string }>(
    ch,
    `SELECT sum(value) AS n FROM system.events WHERE event = 'DuplicatedInsertedBlocks'`,
  );
  return Number(row?.n ?? 0);
}

/**
 * Kafka positions a replica's `<table>_local` holds more than once (not merged away yet), the first
 * few, each with its copies' insert times and parts: whether a redelivery was one retried block or
 * rows of different ones.
 */
export async function repeatedPositions(
  ch: ClickHouseClient,
  database: string,
  table: string,
  limit = 5,
): Promise<string[]> {
  const rows = await select<{ p: number; o: string; c: string; at: string[]; parts: string[] }>(
    ch,
    `SELECT _partition AS p, _offset AS o, count() AS c, groupUniqArray(toString(_ingested_at)) AS at, ` +
      `groupUniqArray(_part) AS parts FROM ${q(database)}.${q(`${table}_local`)} ` +
      `GROUP BY _partition, _offset HAVING c > 1 ORDER BY _partition, _offset LIMIT ${limit}`,
  );
  return rows.map((r) => `${r.p}:${r.o} ×${r.c} at ${r.at.join(',')} in ${r.parts.join(',')}`);
}

/**
 * A three-node Kafka cluster of the test's own (stack/kafka-cluster.ts), on free ports in a temporary
 * stack dir, so that a test can SIGKILL one of its brokers without touching the shared stack. The jars
 * come from the shared stack's lib directory (linked), as in private-stack.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { loadStackConfig, type StackConfig } from '../../stack/config.ts';
import { installStack, stackStatus } from '../../stack/index.ts';
import {
  clusterEndpoint,
  clusterNodes,
  killKafkaNode,
  registeredBrokers,
  startKafkaNodes,
  stopKafkaCluster,
  type ClusterNode,
} from '../../stack/kafka-cluster.ts';
import { freePort } from './sink-clickhouse.ts';

export class PrivateCluster {
  private constructor(
    readonly dir: string,
    private readonly cfg: StackConfig,
    readonly nodes: ClusterNode[],
    private readonly progress: (line: string) => void,
  ) {}

  get brokers(): string {
    return clusterEndpoint(this.nodes);
  }

  static async start(count: number, progress: (line: string) => void): Promise<PrivateCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-cluster-'));
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL']) delete base[name];
    const env: NodeJS.ProcessEnv = { ...base, STACK_DIR: dir };
    const shared = (await stackStatus({ env: base })).find((s) => s.logFile)?.logFile;
    const sharedLib = shared ? path.join(path.dirname(path.dirname(shared)), 'lib') : undefined;
    if (sharedLib && fs.existsSync(sharedLib)) fs.symlinkSync(sharedLib, path.join(dir, 'lib'));
    const cfg = loadStackConfig({}, env);
    const ports = { broker: [] as number[], controller: [] as number[] };
    for (let i = 0; i < count; i++) {
      ports.broker.push(await freePort());
      ports.controller.push(await freePort());
    }
    const nodes = clusterNodes(cfg, count, ports);
    try {
      await installStack({ env, services: ['kafka'], progress });
      await startKafkaNodes(cfg, nodes, progress);
      return new PrivateCluster(dir, cfg, nodes, progress);
    } catch (err) {
      await stopKafkaCluster(cfg, progress).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  node(id: number): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** SIGKILL of the node's process group: a crash, no controlled shutdown. */
  kill(id: number): Promise<number> {
    return killKafkaNode(this.node(id));
  }

  /** Starts the node again (its data dir as the crash left it) and waits until the cluster has registered it. */
  async restart(id: number): Promise<void> {
    await startKafkaNodes(this.cfg, this.nodes, () => undefined, [id]);
  }

  registered(): Promise<number[] | undefined> {
    return registeredBrokers(this.brokers.split(',')[0]!);
  }

  admin() {
    return new Kafka({
      clientId: 'cluster-test',
      brokers: this.brokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
  }

  async stop(): Promise<void> {
    await stopKafkaCluster(this.cfg, this.progress);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Kafka, registry and ClickHouse of the test's own, on free ports in a temporary directory, started
 * and restarted through the stack's own functions: a test that SIGKILLs the broker or ClickHouse must
 * never take down the shared stack other test files use. When the run was given external services
 * (KAFKA_BROKERS / CLICKHOUSE_URL pointing elsewhere than the local stack), there is nothing of ours to
 * kill, and `external` says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureStack, stackStatus, stopStack, type ServiceName, type StackEnv } from '../../stack/index.ts';
import { freePort } from './sink-clickhouse.ts';

const ENDPOINT_VARS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL'] as const;

/** The environment without the endpoint variables, so the stack functions look at local instances. */
function withoutEndpoints(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of ENDPOINT_VARS) delete out[name];
  return out;
}

/**
 * Whether this process was pointed at services other than the default local stack's: then the test uses
 * them as they are and kills none of them.
 */
export async function usesExternalServices(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const local = await stackStatus({ env: withoutEndpoints(env) });
  return local.some((s) => {
    const given = env[ENDPOINT_VARS[['kafka', 'registry', 'clickhouse'].indexOf(s.service)]!];
    return given !== undefined && given.trim() !== '' && given.trim().replace(/\/+$/, '') !== s.endpoint;
  });
}

export class PrivateStack {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly endpoints: StackEnv,
    private readonly progress: (line: string) => void,
    readonly services: readonly ServiceName[],
  ) {}

  /**
   * Starts the services (all three unless told; a ClickHouse cluster run brings its own ClickHouse) on
   * free ports. The jars come from the default stack's lib directory (linked, not copied) when it has
   * them, so nothing is downloaded twice. Without ClickHouse, `endpoints.CLICKHOUSE_URL` names a port
   * nothing of this stack listens on: the caller supplies its own.
   */
  static async start(
    progress: (line: string) => void,
    services: readonly ServiceName[] = ['kafka', 'registry', 'clickhouse'],
  ): Promise<PrivateStack> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-crash-stack-'));
    const base = withoutEndpoints(process.env);
    const shared = (await stackStatus({ env: base })).find((s) => s.logFile)?.logFile;
    const sharedLib = shared ? path.join(path.dirname(path.dirname(shared)), 'lib') : undefined;
    if (sharedLib && fs.existsSync(sharedLib)) fs.symlinkSync(sharedLib, path.join(dir, 'lib'));
    // Kafka's first start appends its storage format's output to logs/kafka.log without making logs/;
    // with ClickHouse among the services something else makes it first, without it nothing does.
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const env: NodeJS.ProcessEnv = {
      ...base,
      STACK_DIR: dir,
      STACK_KAFKA_PORT: String(await freePort()),
      STACK_KAFKA_CONTROLLER_PORT: String(await freePort()),
      STACK_REGISTRY_PORT: String(await freePort()),
      STACK_REGISTRY_MANAGEMENT_PORT: String(await freePort()),
      STACK_CLICKHOUSE_HTTP_PORT: String(await freePort()),
      STACK_CLICKHOUSE_TCP_PORT: String(await freePort()),
    };
    try {
      const { env: endpoints } = await ensureStack({ env, progress, services: [...services] });
      return new PrivateStack(dir, env, endpoints, progress, services);
    } catch (err) {
      await stopStack(services, { env, progress }).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async pid(service: ServiceName): Promise<number | undefined> {
    return (await stackStatus({ env: this.env })).find((s) => s.service === service)?.pid;
  }

  /** SIGKILLs the service's whole process group (the stack starts each server detached, as a group leader). */
  async kill(service: ServiceName): Promise<number> {
    const pid = await this.pid(service);
    if (pid === undefined) throw new Error(`${service} of the private stack is not running`);
    await killGroup(pid);
    return pid;
  }

  /** Starts the service again with the stack's own start function and waits until it is healthy. */
  async restart(service: ServiceName): Promise<void> {
    await ensureStack({ env: this.env, services: [service], progress: () => undefined });
  }

  async stop(): Promise<void> {
    await stopStack(this.services, { env: this.env, progress: this.progress });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGKILL of a server's process group (or of the process, when it leads none); waits up to 10 s until it is gone. */
export async function killGroup(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

import path from 'node:path';
import { clickhouseService } from './clickhouse.ts';
import {
  displayPath,
  EXTERNAL_ENV,
  HOST,
  loadStackConfig,
  paths,
  SERVICES,
  type ConfigOverrides,
  type ServiceName,
  type StackConfig,
} from './config.ts';
import { kafkaService } from './kafka.ts';
import {
  exitStatusOf,
  fileSize,
  isOurs,
  portFree,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tail,
  waitFor,
  writePidFile,
} from './process.ts';
import { ensurePrerequisites } from './prerequisites.ts';
import { registryService } from './registry.ts';
import type { Progress, Service, StackEnv } from './service.ts';

export type { ServiceName, StackEnv, Progress };
export { SERVICES };

const BY_NAME: Record<ServiceName, Service> = {
  kafka: kafkaService,
  registry: registryService,
  clickhouse: clickhouseService,
};

/** A service failed to come up; carries the log to look at. */
export class StackError extends Error {
  constructor(
    readonly service: ServiceName,
    readonly logFile: string,
    message: string,
  ) {
    super(message);
    this.name = 'StackError';
  }
}

export const stderrProgress: Progress = (line) => process.stderr.write(`[stack] ${line}\n`);

export interface StackOptions {
  /** Which services the caller needs; default all three. A local registry pulls in Kafka. */
  services?: ServiceName[];
  config?: ConfigOverrides;
  env?: NodeJS.ProcessEnv;
  progress?: Progress;
}

export interface EnsureResult {
  /** Services this call started (not ones already running or external): what the caller should stop. */
  started: ServiceName[];
  env: StackEnv;
}

function externalOf(s: ServiceName, env: NodeJS.ProcessEnv): string | undefined {
  const v = env[EXTERNAL_ENV[s]];
  return v && v.trim() !== '' ? v.trim() : undefined;
}

/** The endpoints clients should use: the env var where set, else our local instance. */
export function resolveEnv(cfg: StackConfig, env: NodeJS.ProcessEnv = process.env): StackEnv {
  return {
    KAFKA_BROKERS: externalOf('kafka', env) ?? kafkaService.localEndpoint(cfg),
    SCHEMA_REGISTRY_URL: externalOf('registry', env) ?? registryService.localEndpoint(cfg),
    CLICKHOUSE_URL: externalOf('clickhouse', env) ?? clickhouseService.localEndpoint(cfg),
  };
}

function failure(cfg: StackConfig, s: ServiceName, what: string, logFrom = 0): StackError {
  const log = paths.log(cfg, s);
  return new StackError(
    s,
    log,
    `${s}: ${what}\n--- last lines of ${displayPath(log)} ---\n${tail(log, 40, logFrom)}`,
  );
}

/** How many times a service that exits during start-up is started before `up` gives up. */
const STARTUP_ATTEMPTS = 3;

/**
 * Brings one service to healthy. Returns true when this call started it, false when our instance from an
 * earlier `up` was already there.
 */
export async function startService(
  cfg: StackConfig,
  svc: Service,
  env: StackEnv,
  progress: Progress,
): Promise<boolean> {
  const pidFile = paths.pidFile(cfg, svc.name);
  const endpoint = svc.localEndpoint(cfg);
  const check = async () => (!svc.localReady || (await svc.localReady(cfg))) && svc.healthy(endpoint);
  const existing = readPidFile(pidFile);
  if (existing && isOurs(existing)) {
    const res = await waitFor(check, {
      timeoutMs: cfg.healthTimeoutMs,
      exited: () => !isOurs(existing),
    });
    if (res === 'ok') {
      progress(`${svc.name} already running (pid ${existing.pid}) at ${endpoint}`);
      return false;
    }
    if (res === 'timeout') {
      throw failure(
        cfg,
        svc.name,
        `running (pid ${existing.pid}) but not healthy after ${cfg.healthTimeoutMs} ms`,
      );
    }
    // it died while we waited: start it afresh below
  }
  removePidFile(pidFile);

  for (const port of svc.ports(cfg)) {
    if (!(await portFree(HOST, port))) {
      throw new StackError(
        svc.name,
        paths.log(cfg, svc.name),
        `${svc.name}: port ${HOST}:${port} is already in use by a process this stack did not start. ` +
          `Stop it, choose other ports (see stack/README.md), or set ${EXTERNAL_ENV[svc.name]} to use that server.`,
      );
    }
  }

  const earlier: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const logFrom = fileSize(paths.log(cfg, svc.name));
    const spec = await svc.prepare(cfg, env, progress);
    const started = Date.now();
    progress(`starting ${svc.name} (log: ${displayPath(spec.logFile)}) …`);
    const proc = spawnDetached(spec);
    const { pid } = proc;
    const rec = { pid, marker: spec.marker, startedAt: new Date().toISOString() };
    writePidFile(pidFile, rec);

    const res = await waitFor(check, {
      timeoutMs: cfg.healthTimeoutMs,
      exited: () => !isOurs(rec),
    });
    if (res === 'ok') {
      progress(
        `${svc.name} healthy at ${endpoint} (pid ${pid}, ${((Date.now() - started) / 1000).toFixed(1)}s)`,
      );
      return true;
    }
    await stopProcess(rec, 10_000);
    removePidFile(pidFile);
    if (res === 'timeout') {
      throw failure(
        cfg,
        svc.name,
        `not healthy within ${cfg.healthTimeoutMs} ms at ${endpoint}; stopped it`,
        logFrom,
      );
    }
    const status = await exitStatusOf(proc);
    // A server that dies at start-up is usually broken for good (a bad config, a taken port) and its log
    // says why; but a JVM killed from outside leaves no trace, and one such death must not fail a whole
    // `up` or CI run. So a few attempts, each one's end reported, then the failure with all of them.
    if (attempt < STARTUP_ATTEMPTS) {
      earlier.push(`attempt ${attempt}: ${status}`);
      progress(
        `${svc.name} exited during startup (pid ${pid}, ${status}); starting it again (attempt ${attempt + 1} of ${STARTUP_ATTEMPTS})`,
      );
      continue;
    }
    const before = earlier.length > 0 ? `; earlier ${earlier.join(', ')}` : '';
    throw failure(cfg, svc.name, `exited during startup (pid ${pid}, ${status})${before}`, logFrom);
  }
}

/**
 * Gets what the given services run from: missing programs (Java, Maven, clickhouse-server) with apt when
 * running as root, else an error with the commands to run; then the jars from Maven Central.
 */
async function installLocal(
  cfg: StackConfig,
  local: readonly ServiceName[],
  progress: Progress,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const reqs = local.flatMap((s) => BY_NAME[s].requires?.(cfg) ?? []);
  await ensurePrerequisites(reqs, { progress, env, logFile: path.join(paths.logs(cfg), 'apt.log') });
  // Sequential on purpose: two Maven runs must not write the same ~/.m2 at once.
  for (const s of local) await BY_NAME[s].install(cfg, progress);
}

/** What `up` does before starting anything (`npm run stack -- install`): useful to prepare a machine. */
export async function installStack(opts: StackOptions = {}): Promise<ServiceName[]> {
  const env = opts.env ?? process.env;
  const cfg = loadStackConfig(opts.config, env);
  const local = SERVICES.filter((s) => (opts.services ?? SERVICES).includes(s) && !externalOf(s, env));
  await installLocal(cfg, local, opts.progress ?? stderrProgress, env);
  return local;
}

/**
 * Starts whatever of Kafka, the registry and ClickHouse is needed and not already running or provided
 * through KAFKA_BROKERS / SCHEMA_REGISTRY_URL / CLICKHOUSE_URL, and waits until each is healthy. On
 * failure it stops what it started itself before throwing, so a failed `up` leaves nothing behind.
 */
export async function ensureStack(opts: StackOptions = {}): Promise<EnsureResult> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? stderrProgress;
  const cfg = loadStackConfig(opts.config, env);
  const stackEnv = resolveEnv(cfg, env);
  const wanted = new Set<ServiceName>(opts.services ?? SERVICES);
  // The registry journals its schemas to Kafka (kafkasql), so a local registry needs a Kafka.
  if (wanted.has('registry') && !externalOf('registry', env)) wanted.add('kafka');
  const local = SERVICES.filter((s) => wanted.has(s) && !externalOf(s, env));
  for (const s of SERVICES.filter((x) => wanted.has(x) && externalOf(x, env))) {
    progress(`${s}: using ${EXTERNAL_ENV[s]}=${stackEnv[EXTERNAL_ENV[s]]}, not starting one`);
  }

  const started: ServiceName[] = [];
  try {
    await installLocal(cfg, local, progress, env);

    const track = async (s: ServiceName) => {
      if (await startService(cfg, BY_NAME[s], stackEnv, progress)) started.push(s);
    };
    // ClickHouse boots alongside Kafka; the registry has to wait for Kafka.
    const first = local.filter((s) => s !== 'registry').map(track);
    const results = await Promise.allSettled(first);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (local.includes('registry')) await track('registry');
  } catch (err) {
    if (started.length > 0) {
      progress(`stopping what this run started (${started.join(', ')}) after the failure`);
      await stopStack(started, { ...opts, progress: () => undefined });
    }
    throw err;
  }
  return { started, env: stackEnv };
}

export interface StopResult {
  service: ServiceName;
  result: 'stopped' | 'killed' | 'not running';
}

/**
 * Stops our instances of the given services (default all) by their pid files, registry first because it
 * keeps consuming from Kafka until it exits. External services are never touched.
 */
export async function stopStack(services: readonly ServiceName[] = SERVICES, opts: StackOptions = {}) {
  const progress = opts.progress ?? stderrProgress;
  const cfg = loadStackConfig(opts.config, opts.env ?? process.env);
  const stopOne = async (s: ServiceName): Promise<StopResult> => {
    const pidFile = paths.pidFile(cfg, s);
    const rec = readPidFile(pidFile);
    let result: StopResult['result'] = 'not running';
    if (rec && isOurs(rec)) {
      progress(`stopping ${s} (pid ${rec.pid}) …`);
      const r = await stopProcess(rec);
      result = r === 'gone' ? 'not running' : r;
      progress(`${s} ${result}`);
    }
    removePidFile(pidFile);
    return { service: s, result };
  };
  const want = new Set(services);
  const out: StopResult[] = [];
  const wave1 = (['registry', 'clickhouse'] as const).filter((s) => want.has(s));
  out.push(...(await Promise.all(wave1.map(stopOne))));
  if (want.has('kafka')) out.push(await stopOne('kafka'));
  return out;
}

export interface ServiceStatus {
  service: ServiceName;
  /** Set when the env var points elsewhere; then pid and ports are not ours. */
  external: boolean;
  endpoint: string;
  pid: number | undefined;
  healthy: boolean;
  logFile: string | undefined;
}

export async function stackStatus(opts: StackOptions = {}): Promise<ServiceStatus[]> {
  const env = opts.env ?? process.env;
  const cfg = loadStackConfig(opts.config, env);
  const stackEnv = resolveEnv(cfg, env);
  return Promise.all(
    SERVICES.map(async (s) => {
      const external = externalOf(s, env) !== undefined;
      const endpoint = stackEnv[EXTERNAL_ENV[s]];
      const rec = external ? undefined : readPidFile(paths.pidFile(cfg, s));
      const pid = rec && isOurs(rec) ? rec.pid : undefined;
      const healthy = await BY_NAME[s].healthy(endpoint);
      return {
        service: s,
        external,
        endpoint,
        pid,
        healthy,
        logFile: external ? undefined : paths.log(cfg, s),
      };
    }),
  );
}

export { loadStackConfig, paths };

// The producers' poll jobs against the in-process simulator, with the Kafka side replaced by a commit that
// records what each step would publish and applies its state: enough to count what a walk emits and
// dead-letters. (Publishing itself is covered by the integration tests, against real Kafka.)
import { configSchema, type Config, type ConfigInput } from '../../../core/config.ts';
import { createLogger, type Logger } from '../../../core/log.ts';
import type { ResourceName } from '../../../core/resources.ts';
import type { DeadLetter } from '../../../producers/dead-letter.ts';
import type { EngineContext, Emit, Step } from '../../../producers/follow/types.ts';
import { InstabaseClient, type InstabaseClientOptions } from '../../../producers/instabase/index.ts';
import type { InstabaseError } from '../../../producers/instabase/errors.ts';
import { buildJobs } from '../../../producers/jobs.ts';
import type { ProducerRuntime } from '../../../producers/runtime.ts';
import { StateStore } from '../../../producers/state-store.ts';
import type { Simulator } from '../../../sim/index.ts';
import { captureLogger } from './helpers.ts';

export interface Harness {
  config: Config;
  client: InstabaseClient;
  state: StateStore;
  emits: Emit[];
  dead: DeadLetter[];
  /** Log lines (pino JSON) of the jobs. */
  lines: string[];
  logger: Logger;
  /** Runs the poll job of a root resource once. */
  poll(root: ResourceName): Promise<void>;
  close(): Promise<void>;
}

export function harness(
  sim: Simulator,
  producers: ConfigInput['producers'] = {},
  clientOptions: Partial<InstabaseClientOptions> = {},
): Harness {
  const config = configSchema.parse({
    instabase: { apiUrl: sim.url, token: sim.token },
    producers: { concurrency: 4, auditLogsSettleMs: 0, ...producers },
  });
  const quiet = createLogger('engine-test');
  quiet.level = 'silent';
  const client = new InstabaseClient({
    baseUrl: sim.url,
    token: sim.token,
    timeoutMs: 5000,
    maxRetries: 4,
    retryBaseMs: 1,
    retryMaxMs: 10,
    rps: 0,
    concurrency: 6,
    maxPagesPerWalk: 1000,
    logger: quiet,
    ...clientOptions,
  });
  const state = new StateStore('state', 'engine-test');
  const emits: Emit[] = [];
  const dead: DeadLetter[] = [];
  const { logger, lines } = captureLogger();
  const commit = async (step: Step): Promise<void> => {
    emits.push(...step.emits);
    dead.push(...step.dead);
    state.apply(step.state);
  };
  const context = (signal: AbortSignal, log: Logger): EngineContext => ({
    config,
    client,
    state,
    logger: log,
    commit,
    now: () => sim.now(),
    signal,
  });
  const runtime = {
    context,
    deadLetterFailure: async (resource: string, err: InstabaseError) => {
      dead.push({ resource, reason: 'malformed-response', error: err.message, endpoint: err.endpoint });
    },
  } as unknown as ProducerRuntime;
  const jobs = buildJobs({ config, runtime, logger });
  return {
    config,
    client,
    state,
    emits,
    dead,
    lines,
    logger,
    async poll(root) {
      const job = jobs.find((j) => j.name === root);
      if (!job) throw new Error(`no job ${root}`);
      await job.run(new AbortController().signal);
    },
    close: () => client.close(),
  };
}

/** Emits of one resource, not tombstones. */
export const emitted = (h: Harness, resource: ResourceName): Emit[] =>
  h.emits.filter((e) => e.resource === resource && !e.deleted);

import type { Config, ConfigInput } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { startSimulator, type Simulator } from '../sim/index.ts';
import { ensureStack, stopStack, type ServiceName } from '../stack/index.ts';
import { dashboardRoutes } from './dashboard.ts';
import { producersDaemon, sinksDaemon } from './daemons.ts';
import { startProgress } from './start-progress.ts';
import { configFrom, runUntilSignalled, type Daemon, type GlobalOptions } from './lifecycle.ts';

/** Modest live data: enough for every chart within a minute, little enough for a 2-core laptop. */
const DEMO_SCALE = { batches: 300, runs: 60, conversations: 8, queries: 8, auditLogs: 3000, files: 30 };

/**
 * `instabase-stream start`: the whole pipeline in one process group. Without INSTABASE_API_TOKEN it
 * runs against the built-in simulator (live, on the real clock) and brings up the local stack for any
 * service whose endpoint is not configured; with a token it polls the real API.
 */
export async function startCommand(
  options: GlobalOptions & { sim: boolean; simPort: number },
): Promise<void> {
  const first = configFrom(options);
  const demo = !first.instabase.token && options.sim;
  const say = (line: string) => process.stderr.write(`[start] ${line}\n`);

  const stack = await ensureStack({ progress: (line) => say(line) });
  const started: ServiceName[] = stack.started;
  for (const [name, value] of Object.entries(stack.env)) process.env[name] ??= value;

  let sim: Simulator | undefined;
  let overrides: ConfigInput = {};
  if (demo) {
    sim = await startSimulator({
      port: options.simPort,
      startTime: Date.now(),
      tickMs: 1_000,
      speed: 1,
      scale: DEMO_SCALE,
    });
    say(`no INSTABASE_API_TOKEN: polling the built-in simulator at ${sim.url}`);
    overrides = {
      instabase: { apiUrl: sim.url, token: sim.token },
      producers: {
        defaultIntervalMs: 5_000,
        initialLookbackMs: 30 * 24 * 3_600_000,
        files: sim.expected.files().map((f) => f.path),
        queryIds: sim.expected.queryIds(),
      },
      sinks: { flushMs: 500 },
    };
  }
  const config: Config = configFrom(options, overrides);
  if (!config.instabase.token) {
    process.stderr.write('INSTABASE_API_TOKEN is not set and --no-sim was given: nothing to poll\n');
    process.exit(2);
  }
  const simulatorDaemon: Daemon | undefined = sim && {
    health: () => ({ ok: true, component: 'simulator', url: sim.url }),
    stop: async () => {
      await sim.close();
      if (started.length) await stopStack(started);
    },
  };

  await runUntilSignalled(
    config,
    async (logger: Logger) => {
      const daemons: Daemon[] = [];
      if (simulatorDaemon) daemons.push(simulatorDaemon);
      else if (started.length)
        daemons.push({
          health: () => ({ ok: true, component: 'stack' }),
          stop: () => stopStack(started).then(() => undefined),
        });
      daemons.push(
        await sinksDaemon(config, logger, { onFatal: () => process.kill(process.pid, 'SIGTERM') }),
      );
      daemons.push(await producersDaemon(config, logger));
      return daemons;
    },
    {
      routes: dashboardRoutes(config),
      onStarted: (http) => {
        say(`dashboard: ${http.url}/   metrics: ${http.url}/metrics   health: ${http.url}/healthz`);
        say(
          `ClickHouse database "${config.clickhouse.database}" at ${config.clickhouse.url}; Ctrl-C stops everything`,
        );
        startProgress(`${http.url}/`);
      },
    },
  );
}

import { loadConfig, redactedConfig, ConfigError, type Config, type ConfigInput } from '../core/config.ts';
import { warnIfExposed } from '../core/exposure.ts';
import { startHttpServer, type HealthReport, type Route, type RunningHttpServer } from '../core/http.ts';
import { rootLogger, type Logger } from '../core/log.ts';
import { redact } from '../core/secrets.ts';

export interface GlobalOptions {
  config?: string;
}

/** Loads and validates the config, printing every problem at once and exiting 2 when it is invalid. */
export function configFrom(options: GlobalOptions, overrides: ConfigInput = {}): Config {
  try {
    const env = options.config ? { ...process.env, INSTABASE_STREAM_CONFIG: options.config } : process.env;
    return loadConfig({ env, overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

export interface Daemon {
  health(): HealthReport;
  stop(): Promise<void>;
}

/**
 * Runs daemons until SIGINT/SIGTERM: serves /metrics and /healthz (and extra routes), then stops every
 * daemon within the shutdown bound and exits 0; a second signal, or the bound running out, exits 1.
 */
export async function runUntilSignalled(
  config: Config,
  start: (logger: Logger) => Promise<Daemon[]>,
  options: { routes?: Route[]; logger?: Logger; onStarted?: (http: RunningHttpServer) => void } = {},
): Promise<void> {
  const logger = options.logger ?? rootLogger;
  logger.info({ config: redactedConfig(config) }, 'configuration');
  let daemons: Daemon[] = [];
  warnIfExposed(config.http.host, config.http.token, logger);
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    logger,
    routes: options.routes ?? [],
    health: () => {
      const parts = daemons.map((d) => d.health());
      return { ok: parts.length > 0 && parts.every((p) => p.ok), components: parts };
    },
  });
  logger.info({ url: http.url }, 'serving /metrics and /healthz');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const bound = Math.max(config.producers.shutdownTimeoutMs, config.sinks.shutdownTimeoutMs) + 5_000;
    const timer = setTimeout(() => {
      logger.error({ boundMs: bound }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, bound);
    timer.unref();
    for (const daemon of [...daemons].reverse()) {
      await daemon
        .stop()
        .catch((err: unknown) => logger.error({ err }, 'a component failed to stop cleanly'));
    }
    await http.close();
    // A component that failed for good (a sink's incompatible schema) has set a non-zero exit code.
    process.exit(process.exitCode ?? 0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    daemons = await start(logger);
  } catch (err) {
    logger.error({ err }, redact(`start-up failed: ${(err as Error).message}`));
    process.stderr.write(`${redact(String((err as Error).message))}\n`);
    await http.close();
    process.exit(1);
  }
  options.onStarted?.(http);
}

import type { ServiceName, StackConfig } from './config.ts';
import type { Requirement } from './prerequisites.ts';
import type { SpawnSpec } from './process.ts';

/** Endpoints in the form the project's env vars (CONVENTIONS.md) take them. */
export interface StackEnv {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  CLICKHOUSE_URL: string;
}

export type Progress = (line: string) => void;

export interface LaunchSpec extends SpawnSpec {
  /** Appears in the server's command line and nowhere else; see process.ts isOurs. */
  marker: string;
}

/** What the stack needs to know to fetch, configure, start and probe one server. */
export interface Service {
  name: ServiceName;
  /** The URL or bootstrap list for the env var, for our own instance. */
  localEndpoint(cfg: StackConfig): string;
  /** host:port pairs our instance binds; all must be free before it starts. */
  ports(cfg: StackConfig): number[];
  /** Programs this machine must have before install() (installed with apt when missing, as root). */
  requires?(cfg: StackConfig): Requirement[];
  /** Downloads or locates what the server runs from; a no-op when it is already there. */
  install(cfg: StackConfig, progress: Progress): Promise<void>;
  /** Writes config files (and formats storage on first run) and says how to start the server. */
  prepare(cfg: StackConfig, env: StackEnv, progress: Progress): Promise<LaunchSpec>;
  /** One bounded probe of a running endpoint (ours or external). */
  healthy(endpoint: string): Promise<boolean>;
  /** An extra probe only our own instance offers (e.g. a readiness endpoint), checked before `healthy`. */
  localReady?(cfg: StackConfig): Promise<boolean>;
  /** Extra files worth showing when the server fails (besides its stdout/stderr log). */
  extraLogs?(cfg: StackConfig): string[];
}

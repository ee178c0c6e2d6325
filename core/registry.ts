import { Agent as HttpsAgent } from 'node:https';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Agent as UndiciAgent, request, type Dispatcher } from 'undici';
import { avroOptions } from '../schemas/index.ts';
import type { Config } from './config.ts';
import { firstLine, networkFailure, redact, ServiceConnectionError } from './secrets.ts';
import { tlsOptionsFromFiles } from './tls.ts';

type Middleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/** Bearer auth is not built into the client; a mappersmith middleware adds the header per request. */
function bearerMiddleware(token: string): Middleware {
  return () => ({
    prepareRequest: (next) =>
      next().then((request) => request.enhance({ headers: { authorization: `Bearer ${token}` } })),
  });
}

function usesCustomCa(config: Config): boolean {
  return config.registry.url.startsWith('https:') && config.registry.caFile !== undefined;
}

export function createRegistry(config: Config): SchemaRegistry {
  // The registry client builds its own avsc types; they must read int64 extremes as ours do.
  const { registry } = config;
  return new SchemaRegistry(
    {
      host: registry.url,
      clientId: config.kafka.clientId,
      retry: { retries: 5, initialRetryTimeInSecs: 0.2, maxRetryTimeInSecs: 5 },
      ...(registry.username
        ? { auth: { username: registry.username, password: registry.password ?? '' } }
        : {}),
      ...(registry.bearerToken ? { middlewares: [bearerMiddleware(registry.bearerToken)] } : {}),
      ...(usesCustomCa(config)
        ? { agent: new HttpsAgent({ keepAlive: true, ...tlsOptionsFromFiles({ caFile: registry.caFile }) }) }
        : {}),
    },
    { [SchemaType.AVRO]: avroOptions() },
  );
}

/** Headers for the few registry calls the client library has no method for (config, compatibility). */
export function registryHeaders(config: Config): Record<string, string> {
  const { registry } = config;
  const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
  if (registry.username) {
    headers.authorization = `Basic ${Buffer.from(`${registry.username}:${registry.password ?? ''}`).toString('base64')}`;
  } else if (registry.bearerToken) {
    headers.authorization = `Bearer ${registry.bearerToken}`;
  }
  return headers;
}

const dispatchers = new WeakMap<Config, Dispatcher>();

/**
 * The undici dispatcher for plain-HTTP registry calls (`request(url, { headers: registryHeaders(config),
 * dispatcher: registryDispatcher(config) })`): one that trusts SCHEMA_REGISTRY_CA_FILE for an https URL
 * with a private CA, undefined (undici's global one) otherwise. One per config, reused.
 */
export function registryDispatcher(config: Config): Dispatcher | undefined {
  if (!usesCustomCa(config)) return undefined;
  let dispatcher = dispatchers.get(config);
  if (!dispatcher) {
    dispatcher = new UndiciAgent({ connect: tlsOptionsFromFiles({ caFile: config.registry.caFile }) });
    dispatchers.set(config, dispatcher);
  }
  return dispatcher;
}

function authHint(config: Config): string {
  const { registry } = config;
  if (registry.username) return `basic auth as ${registry.username}`;
  if (registry.bearerToken) return 'a bearer token';
  return 'no credentials';
}

function shownUrl(config: Config): string {
  const url = new URL(config.registry.url);
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * A registry answer or failure, as an error naming the schema registry, the URL and the settings to
 * check. `status` is the HTTP status when the registry answered at all.
 */
export function registryConnectionError(config: Config, err: unknown, status?: number): Error {
  if (err instanceof ServiceConnectionError) return err;
  const where = `${shownUrl(config)}, ${authHint(config)}`;
  if (status === 401 || status === 403) {
    const check = config.registry.bearerToken
      ? 'check SCHEMA_REGISTRY_BEARER_TOKEN'
      : 'check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD (Confluent Cloud: the Schema Registry API key and secret)';
    return new ServiceConnectionError(
      'schema registry',
      'auth',
      `schema registry refused the credentials (HTTP ${status} at ${where}): ${check}`,
      err,
    );
  }
  const net = networkFailure(err);
  if (net?.kind === 'tls') {
    return new ServiceConnectionError(
      'schema registry',
      'tls',
      `schema registry TLS handshake failed (${where}): ${redact(net.detail)}; check SCHEMA_REGISTRY_CA_FILE ` +
        'and that the URL names the host in the registry certificate',
      err,
    );
  }
  if (net?.kind === 'unreachable') {
    return new ServiceConnectionError(
      'schema registry',
      'unreachable',
      `schema registry unreachable (${where}): ${redact(net.detail)}; check SCHEMA_REGISTRY_URL`,
      err,
    );
  }
  return new ServiceConnectionError(
    'schema registry',
    'other',
    `schema registry request failed (${where})${status ? `: HTTP ${status}` : ''}: ${firstLine(err)}`,
    err,
  );
}

/**
 * One bounded `GET /subjects` with the configured credentials and CA: a start-up check that fails fast
 * with a ServiceConnectionError when the registry cannot be reached, the certificate is not trusted or
 * the credentials are refused. Resolves with the number of subjects.
 */
export async function checkRegistry(config: Config, timeoutMs = 10_000): Promise<number> {
  let status: number | undefined;
  let text = '';
  try {
    const dispatcher = registryDispatcher(config);
    const response = await request(`${config.registry.url.replace(/\/+$/, '')}/subjects`, {
      method: 'GET',
      headers: registryHeaders(config),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      ...(dispatcher ? { dispatcher } : {}),
    });
    status = response.statusCode;
    text = await response.body.text();
  } catch (err) {
    throw registryConnectionError(config, err);
  }
  if (status !== 200) {
    throw registryConnectionError(config, new Error(`HTTP ${status}: ${text.slice(0, 200)}`), status);
  }
  const subjects: unknown = JSON.parse(text);
  return Array.isArray(subjects) ? subjects.length : 0;
}

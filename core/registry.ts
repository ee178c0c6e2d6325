import { Agent as HttpsAgent } from 'node:https';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { avroOptions } from '../schemas/index.ts';
import type { Config } from './config.ts';
import { tlsOptionsFromFiles } from './tls.ts';

type Middleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/** Bearer auth is not built into the client; a mappersmith middleware adds the header per request. */
function bearerMiddleware(token: string): Middleware {
  return () => ({
    prepareRequest: (next) =>
      next().then((request) => request.enhance({ headers: { authorization: `Bearer ${token}` } })),
  });
}

export function createRegistry(config: Config): SchemaRegistry {
  // The registry client builds its own avsc types; they must read int64 extremes as ours do.
  const { registry } = config;
  const isHttps = registry.url.startsWith('https:');
  return new SchemaRegistry(
    {
      host: registry.url,
      clientId: config.kafka.clientId,
      retry: { retries: 5, initialRetryTimeInSecs: 0.2, maxRetryTimeInSecs: 5 },
      ...(registry.username
        ? { auth: { username: registry.username, password: registry.password ?? '' } }
        : {}),
      ...(registry.bearerToken ? { middlewares: [bearerMiddleware(registry.bearerToken)] } : {}),
      ...(isHttps && registry.caFile
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

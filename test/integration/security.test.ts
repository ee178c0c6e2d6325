/**
 * Production-style security end to end, on real servers started here:
 * - a throwaway Kafka (the stack's jars) whose only client listener is SASL_SSL with SCRAM-SHA-512 and a
 *   broker certificate from a CA made with openssl for this run (hostname verification stays on);
 * - a throwaway ClickHouse (the stack's binary) whose only user has a password, served over HTTPS with
 *   the same CA;
 * - a small proxy in front of the stack's schema registry that demands Basic or Bearer credentials,
 *   over HTTP and over HTTPS with the test CA (Apicurio's own auth needs an OIDC server).
 * The real producers (against the simulator) and the real sinks run in-process with configuration
 * from env vars as a user would set them; rows must land in ClickHouse, no secret may appear in any
 * captured log line, metric, health report or config dump, and wrong credentials must fail fast with
 * an error that names the service and holds no secret.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { request } from 'undici';
import { createClickHouse } from '../../core/clickhouse.ts';
import { loadConfig, redactedConfig, type Config, type ConfigInput } from '../../core/config.ts';
import { startHttpServer } from '../../core/http.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { metricsRegistry } from '../../core/metrics.ts';
import { checkRegistry, createRegistry, registryDispatcher, registryHeaders } from '../../core/registry.ts';
import { ServiceConnectionError } from '../../core/secrets.ts';
import { startProducers, type RunningProducers } from '../../producers/daemon.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import {
  makePki,
  randomSecret,
  startSecureClickHouse,
  startSecureKafka,
  type Pki,
  type SecureClickHouse,
  type SecureKafka,
} from '../../stack/secure.ts';
import { uniqueName, waitFor } from '../helpers/pipeline.ts';
import { testEndpoints } from '../helpers/stack-env.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** Known secrets: each must show up nowhere but in the requests that carry it. */
const SECRETS = {
  instabaseToken: `ib-token-${randomSecret()}`,
  kafkaPassword: `kafka-pw-${randomSecret()}`,
  clickhousePassword: `ch-pw-${randomSecret()}`,
  registryPassword: `registry-secret-${randomSecret()}`,
  registryBearer: `registry-bearer-${randomSecret()}`,
};
const WRONG = {
  kafkaPassword: `wrong-kafka-${randomSecret()}`,
  clickhousePassword: `wrong-ch-${randomSecret()}`,
  registryPassword: `wrong-registry-${randomSecret()}`,
};
const KAFKA_USER = 'alice';
const CH_USER = 'ingest';
const REGISTRY_KEY = 'SR-API-KEY-1';

/** Every line any logger of this test wrote, and everything written to this process's stdout/stderr. */
const captured: string[] = [];
function capturingLogger(name: string): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      captured.push(chunk.toString('utf8'));
      done();
    },
  });
  return createLogger(name, sink, 'debug');
}
function teeProcessOutput(): () => void {
  const restore: Array<() => void> = [];
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return original(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = original as typeof stream.write;
    });
  }
  return () => restore.forEach((r) => r());
}

/** Which of the given secrets (and their Basic-auth forms) occur in a text: names only, never values. */
function leaks(text: string, extra: Record<string, string> = {}): string[] {
  const forms: Record<string, string> = {
    ...SECRETS,
    ...extra,
    registryBasic: Buffer.from(`${REGISTRY_KEY}:${SECRETS.registryPassword}`).toString('base64'),
    clickhouseBasic: Buffer.from(`${CH_USER}:${SECRETS.clickhousePassword}`).toString('base64'),
  };
  return Object.entries(forms)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

interface Proxy {
  httpUrl: string;
  httpsUrl: string;
  seen: { basic: number; bearer: number; rejected: number };
  close(): Promise<void>;
}

/**
 * A registry front that answers 401 unless the request carries the expected Basic credentials or
 * Bearer token, and otherwise forwards it to the stack's registry, on HTTP and on HTTPS (test CA).
 */
async function startRegistryProxy(upstream: string, pki: Pki): Promise<Proxy> {
  const target = new URL(upstream);
  const basic = `Basic ${Buffer.from(`${REGISTRY_KEY}:${SECRETS.registryPassword}`).toString('base64')}`;
  const bearer = `Bearer ${SECRETS.registryBearer}`;
  const seen = { basic: 0, bearer: 0, rejected: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization;
    if (auth === basic) seen.basic += 1;
    else if (auth === bearer) seen.bearer += 1;
    else {
      seen.rejected += 1;
      req.resume();
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="registry"',
      });
      res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
      return;
    }
    const headers = { ...req.headers, host: target.host };
    delete headers.authorization;
    const upstreamReq = httpRequest(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstreamReq.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err.message));
    });
    req.pipe(upstreamReq);
  };
  const http = createHttpServer(handler);
  const https = createHttpsServer(
    { cert: await readText(pki.certFile), key: await readText(pki.keyFile) },
    handler,
  );
  const listen = (server: Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  const [httpPort, httpsPort] = [await listen(http), await listen(https)];
  const close = (server: Server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    httpUrl: `http://127.0.0.1:${httpPort}${target.pathname}`,
    httpsUrl: `https://localhost:${httpsPort}${target.pathname}`,
    seen,
    close: async () => {
      await Promise.all([close(http), close(https)]);
    },
  };
}

async function readText(file: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(file, 'utf8');
}

async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `start`, expecting it to fail; returns the error and how long the failure took. */
async function failure(what: string, start: () => Promise<unknown>, ms = 45_000) {
  const started = Date.now();
  let result: unknown;
  try {
    result = await within(what, ms, start());
  } catch (err) {
    return { err: err as Error, tookMs: Date.now() - started };
  }
  // It should not have worked: stop whatever it started before failing the test.
  await (result as { stop?: () => Promise<void> })?.stop?.().catch(() => undefined);
  assert.fail(`${what} succeeded although it should have been refused`);
}

describe('production security: SASL_SSL Kafka, password-protected ClickHouse over HTTPS, registry auth', () => {
  const prefix = uniqueName('itsec');
  const database = prefix.replace(/[^A-Za-z0-9_]/g, '_');
  const dir = mkdtempSync(join(tmpdir(), 'ibs-security-'));
  const upstreamRegistry = testEndpoints().schemaRegistryUrl;
  let pki: Pki;
  let kafka: SecureKafka | undefined;
  let clickhouse: SecureClickHouse | undefined;
  let proxy: Proxy | undefined;
  let sim: Simulator | undefined;
  let logger: Logger;
  let stopTee: (() => void) | undefined;
  const files: Record<string, string> = {};
  /** Filled by the pipeline test, read by the secret-grep test. */
  const outputs: Record<string, string> = {};

  before(async () => {
    stopTee = teeProcessOutput();
    logger = capturingLogger('security-it');
    pki = await makePki(join(dir, 'pki'));
    [kafka, clickhouse] = await Promise.all([
      startSecureKafka({
        dir: join(dir, 'kafka'),
        pki,
        users: { [KAFKA_USER]: SECRETS.kafkaPassword },
      }),
      startSecureClickHouse({
        dir: join(dir, 'clickhouse'),
        pki,
        users: [{ name: CH_USER, password: SECRETS.clickhousePassword }],
      }),
    ]);
    proxy = await startRegistryProxy(upstreamRegistry, pki);
    files.kafkaPassword = join(dir, 'kafka-password');
    writeFileSync(files.kafkaPassword, `${SECRETS.kafkaPassword}\n`, { mode: 0o600 });
    sim = await startSimulator({
      port: 0,
      token: SECRETS.instabaseToken,
      seed: 'security-it',
      scale: {
        batches: 60,
        runs: 6,
        filesPerRun: 2,
        docsPerFile: 2,
        auditLogs: 150,
        conversations: 3,
        docsPerConversation: 2,
        queries: 3,
        files: 6,
      },
      badRecords: 0.05,
      logger: capturingLogger('sim'),
    });
  });

  after(async () => {
    stopTee?.();
    const quietly = async (what: string, p: Promise<unknown> | undefined) => {
      try {
        await within(what, 30_000, Promise.resolve(p));
      } catch (err) {
        process.stderr.write(`cleanup: ${what} failed: ${(err as Error).message}\n`);
      }
    };
    await quietly('simulator', sim?.close());
    await quietly('registry proxy', proxy?.close());
    await quietly('Kafka', kafka?.stop());
    await quietly('ClickHouse', clickhouse?.stop());
    // Subjects live in the stack's registry: delete this run's, soft then permanently.
    await quietly(
      'registry subjects',
      (async () => {
        const res = await fetch(`${upstreamRegistry}/subjects`, { signal: AbortSignal.timeout(10_000) });
        const subjects = ((await res.json()) as string[]).filter((s) => s.startsWith(prefix));
        for (const subject of subjects) {
          for (const suffix of ['', '?permanent=true']) {
            await fetch(`${upstreamRegistry}/subjects/${encodeURIComponent(subject)}${suffix}`, {
              method: 'DELETE',
              signal: AbortSignal.timeout(10_000),
            });
          }
        }
      })(),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  /** The environment a user would set for this deployment. */
  function userEnv(): Record<string, string> {
    return {
      INSTABASE_API_URL: sim!.url,
      INSTABASE_API_TOKEN: SECRETS.instabaseToken,
      KAFKA_BROKERS: kafka!.brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: KAFKA_USER,
      KAFKA_SASL_PASSWORD_FILE: files.kafkaPassword!,
      KAFKA_CLIENT_ID: prefix,
      TOPIC_PREFIX: `${prefix}.`,
      SCHEMA_REGISTRY_URL: proxy!.httpUrl,
      SCHEMA_REGISTRY_USERNAME: REGISTRY_KEY,
      SCHEMA_REGISTRY_PASSWORD: SECRETS.registryPassword,
      CLICKHOUSE_URL: clickhouse!.httpsUrl,
      CLICKHOUSE_USER: CH_USER,
      CLICKHOUSE_PASSWORD: SECRETS.clickhousePassword,
      CLICKHOUSE_CA_FILE: pki.caFile,
      CLICKHOUSE_DATABASE: database,
    };
  }

  function config(env: Record<string, string> = {}): Config {
    const overrides: ConfigInput = {
      producers: {
        files: sim!.expected.files().map((f) => f.path),
        queryIds: sim!.expected.queryIds(),
        initialLookbackMs: 5 * YEAR_MS,
        defaultIntervalMs: 3_600_000,
        auditLogsSettleMs: 0,
        batchesPageSize: 25,
      },
      sinks: { flushMs: 200 },
    };
    return loadConfig({ cwd: dir, env: { ...userEnv(), ...env }, overrides });
  }

  test('the config comes from env vars and *_FILE as documented', () => {
    const c = config();
    assert.deepEqual(c.kafka.sasl, {
      mechanism: 'scram-sha-512',
      username: KAFKA_USER,
      password: SECRETS.kafkaPassword,
    });
    assert.equal(c.kafka.ssl.enabled, true);
    assert.equal(c.kafka.ssl.rejectUnauthorized, true);
    assert.equal(c.clickhouse.user, CH_USER);
    assert.ok(c.clickhouse.url.startsWith('https://localhost:'));
    assert.equal(c.registry.username, REGISTRY_KEY);
  });

  test('registry: Basic and Bearer reach the server, over HTTP and over HTTPS with a private CA', async () => {
    const before = { ...proxy!.seen };
    const basicTls = config({ SCHEMA_REGISTRY_URL: proxy!.httpsUrl, SCHEMA_REGISTRY_CA_FILE: pki.caFile });
    assert.ok((await checkRegistry(basicTls)) >= 0);

    // The registry client library (what the sinks decode with): register and read back over TLS.
    const subject = `${prefix}.registry-check-value`;
    const schema = JSON.stringify({
      type: 'record',
      name: 'SecurityCheck',
      namespace: 'instabase.test',
      fields: [{ name: 'id', type: 'string' }],
    });
    const { id } = await createRegistry(basicTls).register({ type: SchemaType.AVRO, schema }, { subject });
    assert.ok(id > 0);
    const bearerTls = config({
      SCHEMA_REGISTRY_URL: proxy!.httpsUrl,
      SCHEMA_REGISTRY_CA_FILE: pki.caFile,
      SCHEMA_REGISTRY_USERNAME: '',
      SCHEMA_REGISTRY_PASSWORD: '',
      SCHEMA_REGISTRY_BEARER_TOKEN: SECRETS.registryBearer,
    });
    assert.equal(bearerTls.registry.username, undefined);
    const fetched = (await createRegistry(bearerTls).getSchema(id)) as unknown as { name?: string };
    assert.equal(fetched.name, 'instabase.test.SecurityCheck');

    // The plain-HTTP calls (config, compatibility) with registryHeaders and the CA-aware dispatcher.
    const dispatcher = registryDispatcher(bearerTls);
    assert.ok(dispatcher, 'an https URL with a CA file gets its own dispatcher');
    const res = await request(`${bearerTls.registry.url}/schemas/ids/${id}`, {
      headers: registryHeaders(bearerTls),
      dispatcher,
    });
    assert.equal(res.statusCode, 200);
    await res.body.text();

    assert.ok(proxy!.seen.basic > before.basic, 'Basic credentials arrived');
    assert.ok(proxy!.seen.bearer > before.bearer, 'the Bearer token arrived');
    assert.equal(proxy!.seen.rejected, before.rejected, 'no request went out without credentials');

    // Without the CA: a TLS failure that names the registry and the setting to check.
    const noCa = config({ SCHEMA_REGISTRY_URL: proxy!.httpsUrl });
    const tls = await failure('registry check without the CA', () => checkRegistry(noCa));
    assert.ok(tls.err instanceof ServiceConnectionError, String(tls.err));
    assert.equal(tls.err.kind, 'tls');
    assert.match(tls.err.message, /schema registry TLS handshake failed.*SCHEMA_REGISTRY_CA_FILE/);
  });

  test('producers → SASL_SSL Kafka → sinks → ClickHouse (password, HTTPS): every batch lands', async (t) => {
    const c = config();
    let producers: RunningProducers | undefined;
    let sinks: RunningSinks | undefined;
    let server: Awaited<ReturnType<typeof startHttpServer>> | undefined;
    const reader = createClickHouse(c);
    try {
      producers = await startProducers(c, logger, { now: () => sim!.now() });
      await waitFor(
        'every producer job to finish a poll',
        () => [...producers!.scheduler.status.values()].every((s) => s.polls >= 1 && !s.running),
        120_000,
      );
      for (const [name, s] of producers.scheduler.status) {
        assert.equal(s.lastError, undefined, `${name}: ${s.lastError}`);
      }
      sinks = await startSinks(c, logger, { onFatal: (err) => logger.error({ err }, 'sink fatal') });
      const expected = sim!.expected.batches().keys.length;
      assert.ok(expected > 0);
      let count = -1;
      await waitFor(
        `${expected} rows in ${database}.batches_current`,
        async () => {
          if (sinks!.runner.failure) throw sinks!.runner.failure;
          try {
            const rs = await reader.query({
              query: `SELECT count() AS n FROM ${database}.batches_current`,
              format: 'JSONEachRow',
            });
            count = Number((await rs.json<{ n: string }>())[0]?.n ?? -1);
          } catch {
            count = -1; // the table does not exist until the first flush
          }
          return count === expected;
        },
        120_000,
      );
      assert.equal(count, expected, 'exactly the simulator’s valid batches, through the current-state view');
      t.diagnostic(
        `${count} batches in ${database}.batches_current; sink stats ${JSON.stringify(sinks.runner.stats)}`,
      );

      // What an operator would look at: /metrics and /healthz of a running process, and the config dump.
      server = await startHttpServer({
        host: '127.0.0.1',
        port: 0,
        logger,
        health: () => ({
          ok: true,
          producers: Object.fromEntries(producers!.scheduler.status),
          sinks: { stats: sinks!.runner.stats, failure: sinks!.runner.failure?.message },
          config: redactedConfig(c),
        }),
      });
      outputs.metricsHttp = await (await fetch(`${server.url}/metrics`)).text();
      outputs.healthz = await (await fetch(`${server.url}/healthz`)).text();
      outputs.metricsRegistry = await metricsRegistry.metrics();
      outputs.redactedConfig = JSON.stringify(redactedConfig(c));
      assert.match(outputs.metricsHttp, /instabase_sink_rows_inserted_total/);
      assert.match(outputs.healthz, /"password":"\*\*\*"/);
      assert.ok(proxy!.seen.basic > 0 && proxy!.seen.rejected === 0, 'every registry call was authenticated');
    } finally {
      await server?.close();
      await sinks?.stop().catch((err: Error) => logger.error({ err }, 'stopping sinks'));
      await producers?.stop().catch((err: Error) => logger.error({ err }, 'stopping producers'));
      await reader.close();
    }
  });

  test('wrong or missing credentials fail fast, name the service and carry no secret', async (t) => {
    const cases: Array<{ what: string; run: () => Promise<unknown>; expect: RegExp; maxMs: number }> = [
      {
        what: 'producers with a wrong Kafka password',
        run: () =>
          startProducers(
            config({ KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: WRONG.kafkaPassword }),
            logger,
          ),
        expect: /^Kafka authentication failed \(SASL SCRAM-SHA-512 as alice over TLS\).*KAFKA_SASL_PASSWORD/,
        maxMs: 5_000,
      },
      {
        what: 'sinks with a wrong Kafka password',
        run: () =>
          startSinks(
            config({ KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: WRONG.kafkaPassword }),
            logger,
          ),
        expect: /^Kafka authentication failed/,
        maxMs: 5_000,
      },
      {
        what: 'sinks with a wrong ClickHouse password',
        run: () => startSinks(config({ CLICKHOUSE_PASSWORD: WRONG.clickhousePassword }), logger),
        expect:
          /^ClickHouse authentication failed \(user ingest at https:\/\/localhost:\d+\).*CLICKHOUSE_PASSWORD/,
        maxMs: 10_000,
      },
      {
        what: 'producers with a wrong registry password',
        run: () => startProducers(config({ SCHEMA_REGISTRY_PASSWORD: WRONG.registryPassword }), logger),
        expect: /^schema registry refused the credentials \(HTTP 401 .*SCHEMA_REGISTRY_PASSWORD/,
        maxMs: 10_000,
      },
      {
        what: 'the registry check with a wrong registry password',
        run: () => checkRegistry(config({ SCHEMA_REGISTRY_PASSWORD: WRONG.registryPassword })),
        expect: /^schema registry refused the credentials \(HTTP 401 .*SCHEMA_REGISTRY_PASSWORD/,
        maxMs: 5_000,
      },
      {
        what: 'producers without SASL settings',
        run: () =>
          startProducers(
            config({ KAFKA_SASL_MECHANISM: '', KAFKA_SASL_USERNAME: '', KAFKA_SASL_PASSWORD_FILE: '' }),
            logger,
          ),
        expect: /^Kafka at .* closed the connection of an unauthenticated client.*KAFKA_SASL_MECHANISM/,
        maxMs: 5_000,
      },
      {
        // kafkajs retries connection errors with its default policy (5 retries), so this takes ~10 s.
        what: 'producers without the Kafka CA',
        run: () => startProducers(config({ KAFKA_SSL_CA_FILE: '' }), logger),
        expect: /^Kafka TLS handshake with .* failed .*self-signed certificate.*KAFKA_SSL_CA_FILE/,
        maxMs: 30_000,
      },
    ];
    const problems: string[] = [];
    for (const c of cases) {
      const { err, tookMs } = await failure(c.what, c.run, c.maxMs + 15_000);
      const text = `${err.message}\n${err.stack ?? ''}`;
      const leaked = leaks(text, WRONG);
      if (!leaked.length) t.diagnostic(`${c.what} (${tookMs} ms): ${err.message}`);
      if (!c.expect.test(err.message)) problems.push(`${c.what}: unexpected message: ${err.message}`);
      if (tookMs > c.maxMs) problems.push(`${c.what}: took ${tookMs} ms (limit ${c.maxMs})`);
      if (leaked.length) problems.push(`${c.what}: the error holds ${leaked.join(', ')}`);
    }
    assert.deepEqual(problems, []);
  });

  test('no secret in any log line, spawned server output, metric, health report or config dump', (t) => {
    assert.ok(outputs.metricsHttp && outputs.healthz, 'the pipeline test ran first');
    assert.ok(captured.length > 50, `captured ${captured.length} log writes`);
    const sources: Record<string, string> = {
      ...outputs,
      logs: captured.join(''),
      'kafka server output': kafka!.log(),
      'clickhouse server output': clickhouse!.log(),
    };
    t.diagnostic(
      `searched ${Object.entries(sources)
        .map(([source, text]) => `${source}: ${text.length} chars`)
        .join(', ')}`,
    );
    const found = Object.entries(sources).flatMap(([source, text]) =>
      leaks(text, WRONG).map((secret) => `${secret} in ${source}`),
    );
    assert.deepEqual(found, []);
  });
});

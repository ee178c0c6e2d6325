/**
 * Start-up waiting: transient failures are waited out with a message naming the service and the
 * reason, refused credentials fail at once, and the wait is bounded. The probes run against a port
 * nothing listens on, which is what "Kafka is down" looks like to a client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import pino from 'pino';
import { checkClickHouse } from '../../../core/clickhouse.ts';
import { loadConfig, type Config } from '../../../core/config.ts';
import { checkKafka } from '../../../core/kafka.ts';
import type { Logger } from '../../../core/log.ts';
import { ServiceConnectionError } from '../../../core/secrets.ts';
import { waitForKafka, waitForService, waitForServices } from '../../../core/service-wait.ts';

/** A logger whose lines are collected, to assert what an operator would read. */
function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream) as unknown as Logger, lines };
}

/** A port that was free a moment ago: connecting to it is refused. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function config(env: Record<string, string>): Config {
  return loadConfig({ cwd: mkdtempSync(join(tmpdir(), 'wait-')), env });
}

const unreachable = () =>
  new ServiceConnectionError('Kafka', 'unreachable', 'Kafka unreachable at b:9092: connection refused');

test('transient failures are waited out, each wait logged with the service and the reason', async () => {
  const { logger, lines } = recordingLogger();
  let calls = 0;
  const result = await waitForService(
    'Kafka',
    async () => {
      calls += 1;
      if (calls < 4) throw unreachable();
      return 'up';
    },
    { waitMs: 10_000, retryMaxMs: 20, initialDelayMs: 5, logger },
  );
  assert.equal(result, 'up');
  assert.equal(calls, 4);
  const waits = lines.filter((l) => String(l.msg).startsWith('waiting for Kafka: '));
  assert.equal(waits.length, 3);
  assert.ok(waits.every((l) => /connection refused/.test(String(l.msg))));
  assert.ok(
    waits.every((l) => (l.retryInMs as number) <= 20),
    'the delay is capped',
  );
  assert.ok(lines.some((l) => l.msg === 'Kafka is reachable again; going on'));
});

test('refused credentials fail at once, without waiting', async () => {
  const { logger } = recordingLogger();
  let calls = 0;
  const auth = new ServiceConnectionError('ClickHouse', 'auth', 'ClickHouse authentication failed');
  await assert.rejects(
    waitForService(
      'ClickHouse',
      async () => {
        calls += 1;
        throw auth;
      },
      { waitMs: 10_000, retryMaxMs: 10, logger },
    ),
    (err) => err === auth,
  );
  assert.equal(calls, 1);
});

test('the wait is bounded and the final error says so', async () => {
  const { logger } = recordingLogger();
  const started = Date.now();
  await assert.rejects(
    waitForService(
      'Kafka',
      async () => {
        throw unreachable();
      },
      { waitMs: 200, retryMaxMs: 50, initialDelayMs: 10, logger },
    ),
    (err: unknown) =>
      err instanceof ServiceConnectionError &&
      err.kind === 'unreachable' &&
      /connection refused .*gave up after waiting .*STARTUP_WAIT_MS/.test(err.message),
  );
  assert.ok(Date.now() - started < 5_000);
});

test('Kafka down: the probe says connection refused and gives no SASL/SSL advice', async () => {
  const port = await closedPort();
  const { logger } = recordingLogger();
  await assert.rejects(checkKafka(config({ KAFKA_BROKERS: `127.0.0.1:${port}` }), logger), (err: unknown) => {
    assert.ok(err instanceof ServiceConnectionError);
    assert.equal(err.kind, 'unreachable');
    assert.match(
      err.message,
      new RegExp(`^Kafka unreachable at 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    assert.doesNotMatch(err.message, /SASL|SSL/);
    return true;
  });
});

test('ClickHouse and the registry down: waitForServices names the service that is unreachable', async () => {
  const port = await closedPort();
  const { logger, lines } = recordingLogger();
  const cfg = config({
    CLICKHOUSE_URL: `http://127.0.0.1:${port}`,
    SCHEMA_REGISTRY_URL: `http://127.0.0.1:${port}/apis/ccompat/v7`,
    STARTUP_WAIT_MS: '300',
  });
  await assert.rejects(checkClickHouse(cfg), (err: unknown) => err instanceof ServiceConnectionError);
  await assert.rejects(
    waitForServices(cfg, logger, ['registry', 'clickhouse']),
    (err: unknown) =>
      err instanceof ServiceConnectionError &&
      err.service === 'schema registry' &&
      /unreachable/.test(err.message),
  );
  assert.ok(lines.some((l) => String(l.msg).startsWith('waiting for schema registry: ')));
});

/**
 * A broker restarting under a started process resets a request made after connecting (describeConfigs,
 * createTopics, initTransactions): kafkajs throws that bare, not as a ServiceConnectionError. Start-up
 * exited on it ("start-up failed: Connection error: read ECONNRESET") until waitForKafka mapped it.
 */
test('waitForKafka waits out what kafkajs throws mid-request, and nothing that is not an outage', async () => {
  const { logger, lines } = recordingLogger();
  const cfg = config({ KAFKA_BROKERS: '127.0.0.1:1' });
  const reset = () =>
    new kafkajs.KafkaJSNumberOfRetriesExceeded(
      new kafkajs.KafkaJSConnectionError('Connection error: read ECONNRESET', { broker: '127.0.0.1:1' }),
      { retryCount: 5, retryTime: 100 },
    );
  let calls = 0;
  const result = await waitForKafka(
    cfg,
    async () => {
      calls += 1;
      if (calls === 1) throw new kafkajs.KafkaJSConnectionError('Connection error: read ECONNRESET');
      if (calls === 2) throw reset();
      return 'described';
    },
    { waitMs: 10_000, retryMaxMs: 20, initialDelayMs: 5, logger },
  );
  assert.equal(result, 'described');
  assert.equal(calls, 3);
  assert.equal(lines.filter((l) => String(l.msg).startsWith('waiting for Kafka: ')).length, 2);
  // The same bare error through the generic wait is what ended start-up.
  await assert.rejects(
    waitForService(
      'Kafka',
      async () => {
        throw reset();
      },
      { waitMs: 10_000, retryMaxMs: 20, logger },
    ),
    (err: unknown) => (err as Error).name === 'KafkaJSNumberOfRetriesExceeded',
  );

  // A clean broker shutdown closes the connection mid-request (createTopics gives up on it at once):
  // waited out too, even with TLS and no SASL (kafkaConnectionError would guess "the listener wants SASL"
  // and stop). Its class is missing from kafkajs's types.
  const Closed = (kafkajs as unknown as Record<string, new (m: string, o: object) => Error>)
    .KafkaJSConnectionClosedError!;
  const tls = config({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_SSL: 'true' });
  let closedTries = 0;
  await waitForKafka(
    tls,
    async () => {
      closedTries += 1;
      if (closedTries === 1) throw new Closed('Closed connection', { host: '127.0.0.1', port: 1 });
    },
    { waitMs: 10_000, retryMaxMs: 20, initialDelayMs: 5, logger },
  );
  assert.equal(closedTries, 2);

  // Refused credentials or permissions, a bad topic setting, and errors that are no outage are thrown
  // at once, as they were.
  const protocolError = (type: string) =>
    Object.assign(new kafkajs.KafkaJSProtocolError(type), { type, retriable: false });
  for (const thrown of [
    // Its declared constructor takes nothing; kafkajs passes the message.
    new (kafkajs.KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(
      'SASL PLAIN authentication failed',
    ),
    protocolError('TOPIC_AUTHORIZATION_FAILED'),
    new kafkajs.KafkaJSNonRetriableError(protocolError('INVALID_REPLICATION_FACTOR')),
    new TypeError('not an outage'),
  ]) {
    let tries = 0;
    await assert.rejects(
      waitForKafka(
        cfg,
        async () => {
          tries += 1;
          throw thrown;
        },
        { waitMs: 10_000, retryMaxMs: 20, logger },
      ),
      (err: unknown) => err === thrown,
    );
    assert.equal(tries, 1, String(thrown));
  }
});

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { clickhouseConnectionError } from '../../../core/clickhouse.ts';
import { loadConfig, type Config } from '../../../core/config.ts';
import { createKafka, describeKafkaAuth, kafkaConnectionError } from '../../../core/kafka.ts';
import { createLogger } from '../../../core/log.ts';
import { registryConnectionError } from '../../../core/registry.ts';
import { networkFailure, redact, redactError, ServiceConnectionError } from '../../../core/secrets.ts';
import { tlsOptionsFromFiles } from '../../../core/tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'conn-'));
const KAFKA_PW = 'kafka-unit-secret-1';
const CH_PW = 'ch-unit-secret-2';
const REG_PW = 'registry-unit-secret-3';

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    cwd: dir,
    env: {
      KAFKA_BROKERS: 'b1.example.com:9096,b2.example.com:9096',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'alice',
      KAFKA_SASL_PASSWORD: KAFKA_PW,
      CLICKHOUSE_URL: 'https://ch.example.com:8443',
      CLICKHOUSE_USER: 'ingest',
      CLICKHOUSE_PASSWORD: CH_PW,
      SCHEMA_REGISTRY_URL: 'https://sr.example.com',
      SCHEMA_REGISTRY_USERNAME: 'KEY',
      SCHEMA_REGISTRY_PASSWORD: REG_PW,
      ...env,
    },
  });
}

// The real kafkajs error classes (CommonJS exports that ESM named imports cannot see; typed loosely
// because kafkajs's typings give some of them no constructor arguments).
type ErrorClass = new (e: string | Error, meta?: object) => Error;
const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSSASLAuthenticationError } =
  kafkajs as unknown as Record<
    'KafkaJSConnectionError' | 'KafkaJSNumberOfRetriesExceeded' | 'KafkaJSSASLAuthenticationError',
    ErrorClass
  >;

function tlsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function noSecrets(err: Error): void {
  for (const secret of [KAFKA_PW, CH_PW, REG_PW]) {
    assert.ok(!err.message.includes(secret) && !(err.stack ?? '').includes(secret), 'secret in the error');
  }
}

test('Kafka: a SASL failure names Kafka, the mechanism, the user and the settings; it is permanent', () => {
  const c = config();
  const err = kafkaConnectionError(
    c,
    new KafkaJSSASLAuthenticationError('SASL SCRAM SHA512 authentication failed: invalid credentials'),
  );
  assert.ok(err instanceof ServiceConnectionError);
  assert.equal(err.service, 'Kafka');
  assert.equal(err.kind, 'auth');
  assert.equal(err.permanent, true);
  assert.match(
    err.message,
    /^Kafka authentication failed \(SASL SCRAM-SHA-512 as alice over TLS\) at b1\.example\.com:9096,b2\.example\.com:9096: check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
  );
  noSecrets(err);
});

test('Kafka: an untrusted certificate, even behind retries, is a TLS failure pointing at the CA file', () => {
  const cause = new KafkaJSConnectionError('Connection error: self-signed certificate in certificate chain', {
    broker: 'b1:9096',
    code: 'SELF_SIGNED_CERT_IN_CHAIN',
  });
  const err = kafkaConnectionError(
    config(),
    new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 9000 }),
  );
  assert.ok(err instanceof ServiceConnectionError);
  assert.equal(err.kind, 'tls');
  assert.match(err.message, /^Kafka TLS handshake with .* failed .*KAFKA_SSL_CA_FILE/);
});

test('Kafka: refused connections and OAUTHBEARER get their own advice', () => {
  const refused = kafkaConnectionError(
    config(),
    tlsError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:9096'),
  );
  assert.equal((refused as ServiceConnectionError).kind, 'unreachable');
  assert.match(refused.message, /^Kafka unreachable at .*check KAFKA_BROKERS/);
  const oauth = config({
    KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
    KAFKA_SASL_USERNAME: '',
    KAFKA_SASL_PASSWORD: '',
    KAFKA_SASL_OAUTH_TOKEN: 'oauth-token-xyz',
  });
  assert.equal(describeKafkaAuth(oauth), 'SASL OAUTHBEARER over TLS');
  const err = kafkaConnectionError(
    oauth,
    new KafkaJSSASLAuthenticationError('SASL OAUTHBEARER: invalid token oauth-token-xyz'),
  );
  assert.match(err.message, /KAFKA_SASL_OAUTH_TOKEN/);
  assert.ok(!err.message.includes('oauth-token-xyz'), 'the token is scrubbed even when the server echoes it');
});

test('Kafka: createKafka returns a client whose admin, producer and consumer are guarded', () => {
  const kafka = createKafka(config(), createLogger('t', undefined, 'silent'));
  for (const client of [kafka.admin(), kafka.producer(), kafka.consumer({ groupId: 'g' })]) {
    assert.equal(typeof client.connect, 'function');
    assert.match(client.connect.toString(), /kafkaConnectionError/);
  }
});

test('ClickHouse: wrong password, unknown user and untrusted certificates are named and explained', () => {
  const c = config();
  const wrong = clickhouseConnectionError(
    c,
    Object.assign(new Error('Code: 193, e.displayText() = DB::Exception: Wrong password for user ingest'), {
      code: '193',
    }),
  );
  assert.ok(wrong instanceof ServiceConnectionError);
  assert.equal(wrong.kind, 'auth');
  assert.match(
    wrong.message,
    /^ClickHouse authentication failed \(user ingest at https:\/\/ch\.example\.com:8443\): check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD/,
  );
  const modern = clickhouseConnectionError(
    c,
    Object.assign(new Error('Authentication failed'), { code: '516' }),
  );
  assert.equal((modern as ServiceConnectionError).kind, 'auth');
  const tls = clickhouseConnectionError(
    c,
    tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
  );
  assert.match(tls.message, /^ClickHouse TLS handshake failed .*CLICKHOUSE_CA_FILE/);
  // A bad query is not a connection problem and stays as it was.
  const syntax = Object.assign(new Error('Code: 62, Syntax error'), { code: '62' });
  assert.equal(clickhouseConnectionError(c, syntax), syntax);
  noSecrets(wrong);
});

test('registry: 401/403 name the registry and the credential settings; TLS points at the CA file', () => {
  const c = config();
  const auth = registryConnectionError(c, new Error('HTTP 401'), 401);
  assert.match(
    auth.message,
    /^schema registry refused the credentials \(HTTP 401 at https:\/\/sr\.example\.com\/, basic auth as KEY\): check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD/,
  );
  const bearer = config({
    SCHEMA_REGISTRY_USERNAME: '',
    SCHEMA_REGISTRY_PASSWORD: '',
    SCHEMA_REGISTRY_BEARER_TOKEN: 'bearer-unit-4',
  });
  assert.match(registryConnectionError(bearer, new Error('x'), 403).message, /SCHEMA_REGISTRY_BEARER_TOKEN/);
  const tls = registryConnectionError(
    c,
    tlsError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
  );
  assert.match(tls.message, /^schema registry TLS handshake failed .*SCHEMA_REGISTRY_CA_FILE/);
  noSecrets(auth);
});

test('networkFailure finds TLS and socket errors anywhere in a cause chain', () => {
  const wrapped = new Error('outer', {
    cause: new Error('middle', { cause: tlsError('CERT_HAS_EXPIRED', 'certificate has expired') }),
  });
  assert.deepEqual(networkFailure(wrapped), {
    kind: 'tls',
    detail: 'CERT_HAS_EXPIRED: certificate has expired',
  });
  assert.equal(
    networkFailure(new AggregateError([tlsError('ECONNREFUSED', 'refused')]))?.kind,
    'unreachable',
  );
  assert.equal(networkFailure(new Error('something else')), undefined);
});

test('secrets are scrubbed in plain, URL-encoded and Basic-auth forms, through error causes', () => {
  config({ SCHEMA_REGISTRY_PASSWORD: 'p@ss/word+1' });
  assert.equal(redact('x p@ss/word+1 y'), 'x *** y');
  assert.equal(redact(`url?pw=${encodeURIComponent('p@ss/word+1')}`), 'url?pw=***');
  const basic = Buffer.from(`ingest:${CH_PW}`).toString('base64');
  assert.equal(redact(`authorization: Basic ${basic}`), 'authorization: Basic ***');
  const err = redactError(new Error(`outer ${KAFKA_PW}`, { cause: new Error(`inner ${REG_PW}`) }));
  assert.equal(err.message, 'outer ***');
  assert.equal((err.cause as Error).message, 'inner ***');
});

test('TLS files: a missing file is an error naming the file, and verification defaults on', () => {
  assert.throws(
    () => tlsOptionsFromFiles({ caFile: '/nonexistent/ca.pem' }),
    /cannot read the TLS CA file \/nonexistent\/ca\.pem: ENOENT/,
  );
  assert.deepEqual(tlsOptionsFromFiles({}), { rejectUnauthorized: true });
  assert.deepEqual(tlsOptionsFromFiles({ keyPassword: 'kp' }), {
    passphrase: 'kp',
    rejectUnauthorized: true,
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, redactedConfig, ConfigError } from '../../../core/config.ts';
import { redact } from '../../../core/secrets.ts';

const emptyDir = mkdtempSync(join(tmpdir(), 'cfg-'));

test('defaults follow CONVENTIONS.md', () => {
  const config = loadConfig({ env: {}, cwd: emptyDir });
  assert.equal(config.instabase.apiUrl, 'https://aihub.instabase.com/api');
  assert.deepEqual(config.kafka.brokers, ['127.0.0.1:9092']);
  assert.equal(config.registry.url, 'http://127.0.0.1:8081/apis/ccompat/v7');
  assert.equal(config.clickhouse.url, 'http://127.0.0.1:8123');
  assert.equal(config.clickhouse.user, 'default');
  assert.equal(config.clickhouse.database, 'instabase');
  assert.equal(config.kafka.topicPrefix, 'instabase.');
  assert.equal(config.http.port, 3000);
  assert.equal(config.http.host, '127.0.0.1');
  assert.equal(config.producers.resources.length, 10);
});

test('the environment wins over the config file, and both formats load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(
    file,
    'kafka:\n  brokers: ["a:1"]\n  topicPrefix: "file."\nclickhouse:\n  database: fromfile\n',
  );
  const config = loadConfig({ env: { INSTABASE_STREAM_CONFIG: file, TOPIC_PREFIX: 'env.' }, cwd: dir });
  assert.deepEqual(config.kafka.brokers, ['a:1']);
  assert.equal(config.kafka.topicPrefix, 'env.');
  assert.equal(config.clickhouse.database, 'fromfile');
});

test('every problem is listed at once', () => {
  try {
    loadConfig({
      env: {
        KAFKA_BROKERS: 'nohostport',
        CLICKHOUSE_URL: 'not a url',
        HTTP_PORT: '99999',
        CLICKHOUSE_DATABASE: 'bad-name',
      },
      cwd: emptyDir,
    });
    assert.fail('expected ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const joined = err.problems.join('\n');
    assert.match(joined, /kafka\.brokers\.0/);
    assert.match(joined, /clickhouse\.url/);
    assert.match(joined, /http\.port/);
    assert.match(joined, /clickhouse\.database/);
    assert.equal(err.problems.length, 4);
  }
});

test('unknown keys in the file are rejected, not ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(
    join(dir, 'instabase-stream.config.json'),
    JSON.stringify({ kafak: {}, kafka: { brokerz: [] } }),
  );
  assert.throws(
    () => loadConfig({ env: {}, cwd: dir }),
    (e: Error) => /kafak/.test(e.message) && /brokerz/.test(e.message),
  );
});

test('secrets come from env or *_FILE, are redacted in dumps and scrubbed from text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'ch-s3cret-from-file\n');
  const config = loadConfig({
    env: { INSTABASE_API_TOKEN: 'tok-abcdef-123', CLICKHOUSE_PASSWORD_FILE: pwFile },
    cwd: dir,
  });
  assert.equal(config.clickhouse.password, 'ch-s3cret-from-file');
  const dump = JSON.stringify(redactedConfig(config));
  assert.ok(!dump.includes('tok-abcdef-123'));
  assert.ok(!dump.includes('ch-s3cret-from-file'));
  assert.equal(redact('Bearer tok-abcdef-123 and ch-s3cret-from-file'), 'Bearer *** and ***');
});

test('a missing secret file is a listed problem naming the variable, not the content', () => {
  assert.throws(
    () => loadConfig({ env: { KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw' }, cwd: emptyDir }),
    /KAFKA_SASL_PASSWORD_FILE: cannot read \/nonexistent\/pw: ENOENT/,
  );
});

test('SASL settings from env are validated as a unit', () => {
  assert.throws(
    () =>
      loadConfig({ env: { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u' }, cwd: emptyDir }),
    /kafka\.sasl\.password/,
  );
  const ok = loadConfig({
    env: { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'pppp' },
    cwd: emptyDir,
  });
  assert.deepEqual(ok.kafka.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'pppp' });
});

test('credentials in a URL are refused with a hint, and the URL is not echoed', () => {
  try {
    loadConfig({
      env: {
        CLICKHOUSE_URL: 'https://ingest:url-pw-1@ch.example.com:8443',
        SCHEMA_REGISTRY_URL: 'https://key:url-pw-2@sr.example.com',
        INSTABASE_API_URL: 'https://u:url-pw-3@aihub.example.com/api',
      },
      cwd: emptyDir,
    });
    assert.fail('expected ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const joined = err.problems.join('\n');
    assert.match(
      joined,
      /clickhouse\.url: credentials do not belong in the URL.*CLICKHOUSE_USER and CLICKHOUSE_PASSWORD/,
    );
    assert.match(joined, /registry\.url: credentials do not belong in the URL.*SCHEMA_REGISTRY_USERNAME/);
    assert.match(joined, /instabase\.apiUrl: credentials do not belong in the URL.*INSTABASE_API_TOKEN/);
    assert.ok(!/url-pw-/.test(err.message));
  }
});

test('registry auth: basic needs both halves, and basic and bearer exclude each other', () => {
  assert.throws(
    () => loadConfig({ env: { SCHEMA_REGISTRY_USERNAME: 'key' }, cwd: emptyDir }),
    /registry: basic auth needs both username and password/,
  );
  assert.throws(
    () =>
      loadConfig({
        env: {
          SCHEMA_REGISTRY_USERNAME: 'key',
          SCHEMA_REGISTRY_PASSWORD: 'secret-1',
          SCHEMA_REGISTRY_BEARER_TOKEN: 'bearer-1',
        },
        cwd: emptyDir,
      }),
    /registry: choose basic auth \(username\/password\) or bearerToken, not both/,
  );
});

test('Kafka TLS: a CA file implies TLS unless disabled, files must be readable, key and cert go together', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
  const implied = loadConfig({ env: { KAFKA_SSL_CA_FILE: ca }, cwd: dir });
  assert.equal(implied.kafka.ssl.enabled, true);
  assert.equal(implied.kafka.ssl.rejectUnauthorized, true);
  const off = loadConfig({ env: { KAFKA_SSL_CA_FILE: ca, KAFKA_SSL: 'false' }, cwd: dir });
  assert.equal(off.kafka.ssl.enabled, false);
  assert.equal(loadConfig({ env: {}, cwd: dir }).kafka.ssl.enabled, false);
  assert.throws(
    () => loadConfig({ env: { KAFKA_SSL_CA_FILE: join(dir, 'missing.pem') }, cwd: dir }),
    /kafka\.ssl\.caFile: cannot read .*missing\.pem: ENOENT/,
  );
  assert.throws(
    () =>
      loadConfig({
        env: { CLICKHOUSE_CA_FILE: '/nonexistent/ch.pem', SCHEMA_REGISTRY_CA_FILE: '/nonexistent/sr.pem' },
        cwd: dir,
      }),
    (e: Error) => /clickhouse\.caFile/.test(e.message) && /registry\.caFile/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ env: { KAFKA_SSL_CERT_FILE: ca }, cwd: dir }),
    /kafka\.ssl: a client certificate needs its key/,
  );
});

test('the key passphrase and OAUTHBEARER token are secrets; OAUTHBEARER needs exactly one token source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const pem = join(dir, 'x.pem');
  writeFileSync(pem, 'x');
  const config = loadConfig({
    env: {
      KAFKA_SSL_CERT_FILE: pem,
      KAFKA_SSL_KEY_FILE: pem,
      KAFKA_SSL_KEY_PASSWORD: 'key-passphrase-1',
      KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
      KAFKA_SASL_OAUTH_TOKEN: 'oauth-token-1',
    },
    cwd: dir,
  });
  assert.equal(config.kafka.ssl.enabled, true);
  const dump = JSON.stringify(redactedConfig(config));
  assert.ok(!dump.includes('key-passphrase-1') && !dump.includes('oauth-token-1'));
  assert.equal(redact('key-passphrase-1 oauth-token-1'), '*** ***');
  assert.throws(
    () => loadConfig({ env: { KAFKA_SASL_MECHANISM: 'OAUTHBEARER' }, cwd: dir }),
    /kafka\.sasl: OAUTHBEARER needs exactly one of token/,
  );
});

test('Basic credentials are scrubbed in their base64 wire form too', () => {
  loadConfig({
    env: {
      CLICKHOUSE_USER: 'ingest',
      CLICKHOUSE_PASSWORD: 'ch-basic-pw-1',
      SCHEMA_REGISTRY_USERNAME: 'K',
      SCHEMA_REGISTRY_PASSWORD: 'sr-basic-pw-1',
    },
    cwd: emptyDir,
  });
  const chBasic = Buffer.from('ingest:ch-basic-pw-1').toString('base64');
  const srBasic = Buffer.from('K:sr-basic-pw-1').toString('base64');
  assert.equal(redact(`Basic ${chBasic} / Basic ${srBasic}`), 'Basic *** / Basic ***');
});

test('instabase.rps takes 0 (unlimited), as the client does, and refuses a negative rate', () => {
  assert.equal(loadConfig({ cwd: emptyDir, env: {}, overrides: { instabase: { rps: 0 } } }).instabase.rps, 0);
  assert.throws(
    () => loadConfig({ cwd: emptyDir, env: {}, overrides: { instabase: { rps: -1 } } }),
    /instabase\.rps/,
  );
});

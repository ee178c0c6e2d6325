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
  assert.equal(config.producers.resources.length, 9);
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

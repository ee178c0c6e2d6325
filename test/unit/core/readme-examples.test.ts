/**
 * The "Connecting to production" examples in README.md are loaded through loadConfig exactly as written
 * (env blocks as the environment, YAML blocks as the config file), so the README cannot drift from the
 * config schema. Only the secret files the examples name (/run/secrets/…) are created, in a temp dir.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV_VARS, loadConfig, redactedConfig, type Config } from '../../../core/config.ts';

const README = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'README.md');

interface Example {
  name: string;
  lang: 'sh' | 'yaml';
  body: string;
}

function productionSection(): string {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('<!-- production:start -->');
  const end = text.indexOf('<!-- production:end -->');
  assert.ok(start >= 0 && end > start, 'README.md has the production markers');
  return text.slice(start, end);
}

function examples(): Map<string, Example> {
  const section = productionSection();
  const out = new Map<string, Example>();
  for (const m of section.matchAll(/<!-- example: ([\w-]+) -->\s*```(sh|yaml)\n([\s\S]*?)```/g)) {
    out.set(m[1]!, { name: m[1]!, lang: m[2] as 'sh' | 'yaml', body: m[3]! });
  }
  // Every sh/yaml block in the section is an example checked here; none goes untested.
  const blocks = [...section.matchAll(/```(sh|yaml|yml|json|bash)\n/g)].length;
  assert.equal(blocks, out.size, 'every code block in the section carries an <!-- example: name --> label');
  return out;
}

/** `export NAME=value` lines (values bare or in single/double quotes), as a shell would read them. */
function parseEnv(body: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^export ([A-Z_][A-Z0-9_]*)=(?:'([^']*)'|"([^"]*)"|(\S*))$/.exec(line);
    assert.ok(m, `not a plain "export NAME=value" line: ${line}`);
    // An unknown name would be ignored silently by loadConfig, so it is caught here.
    const known = ENV_VARS.includes(m[1]!) || ENV_VARS.includes(m[1]!.replace(/_FILE$/, ''));
    assert.ok(known, `${m[1]} is not an environment variable the config reads`);
    env[m[1]!] = m[2] ?? m[3] ?? m[4] ?? '';
  }
  return env;
}

/** Secret files the example names are created under `dir`, holding a recognisable value. */
function withSecretFiles(env: Record<string, string>, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.endsWith('_FILE') && value.startsWith('/run/secrets/')) {
      const file = join(dir, value);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `from-${value.split('/').pop()}\n`);
      out[name] = file;
    } else {
      out[name] = value;
    }
  }
  return out;
}

function load(names: string[]): Config {
  const all = examples();
  const dir = mkdtempSync(join(tmpdir(), 'readme-'));
  let env: Record<string, string> = {};
  for (const name of names) {
    const ex = all.get(name);
    assert.ok(ex, `README example "${name}" exists`);
    if (ex.lang === 'yaml') {
      const file = join(dir, 'instabase-stream.config.yaml');
      writeFileSync(file, ex.body);
    } else {
      env = { ...env, ...withSecretFiles(parseEnv(ex.body), dir) };
    }
  }
  return loadConfig({ env, cwd: dir });
}

test('the README section labels every example and each one is known here', () => {
  assert.deepEqual([...examples().keys()].sort(), [
    'clickhouse-cloud',
    'config-file',
    'config-file-secrets',
    'confluent-cloud',
    'msk-scram',
  ]);
});

test('Confluent Cloud: SASL_SSL PLAIN with API key and secret, registry basic auth', () => {
  const c = load(['confluent-cloud']);
  assert.deepEqual(c.kafka.brokers, ['pkc-4r297.us-east-1.aws.confluent.cloud:9092']);
  assert.equal(c.kafka.ssl.enabled, true);
  assert.equal(c.kafka.ssl.rejectUnauthorized, true);
  assert.equal(c.kafka.ssl.caFile, undefined);
  assert.deepEqual(c.kafka.sasl, {
    mechanism: 'plain',
    username: 'CLUSTERAPIKEY4R2Z',
    password: 'cluster-api-secret',
  });
  assert.equal(c.kafka.replicationFactor, 3);
  assert.equal(c.registry.url, 'https://psrc-8kz20.us-east-2.aws.confluent.cloud');
  assert.equal(c.registry.username, 'SRAPIKEY7QX2');
  assert.equal(c.registry.password, 'schema-registry-api-secret');
  assert.equal(c.registry.bearerToken, undefined);
  const dump = JSON.stringify(redactedConfig(c));
  assert.ok(!dump.includes('cluster-api-secret') && !dump.includes('schema-registry-api-secret'));
});

test('MSK: SASL_SSL SCRAM-SHA-512 on 9096 with the password from a file', () => {
  const c = load(['msk-scram']);
  assert.equal(c.kafka.brokers.length, 2);
  assert.ok(c.kafka.brokers.every((b) => b.endsWith('.amazonaws.com:9096')));
  assert.equal(c.kafka.ssl.enabled, true);
  assert.deepEqual(c.kafka.sasl, {
    mechanism: 'scram-sha-512',
    username: 'instabase-stream',
    password: 'from-msk-password',
  });
  assert.equal(c.kafka.replicationFactor, 3);
});

test('ClickHouse Cloud: HTTPS on 8443 with user and password, nothing in the URL', () => {
  const c = load(['clickhouse-cloud']);
  const url = new URL(c.clickhouse.url);
  assert.equal(url.protocol, 'https:');
  assert.equal(url.port, '8443');
  assert.equal(url.username + url.password, '');
  assert.equal(c.clickhouse.user, 'default');
  assert.equal(c.clickhouse.password, 'from-clickhouse-password');
  assert.equal(c.clickhouse.database, 'instabase');
  assert.equal(c.clickhouse.caFile, undefined);
});

test('config file plus secrets from the environment', () => {
  const c = load(['config-file', 'config-file-secrets']);
  assert.equal(c.instabase.apiUrl, 'https://aihub.instabase.com/api');
  assert.equal(c.instabase.token, 'from-instabase-token');
  assert.equal(c.kafka.brokers.length, 2);
  assert.equal(c.kafka.ssl.enabled, true);
  assert.deepEqual(c.kafka.sasl, {
    mechanism: 'scram-sha-512',
    username: 'instabase-stream',
    password: 'from-msk-password',
  });
  assert.equal(c.registry.username, 'SRAPIKEY7QX2');
  assert.equal(c.registry.password, 'from-registry-secret');
  assert.equal(c.clickhouse.url, 'https://kx81p2vq3a.us-east-1.aws.clickhouse.cloud:8443');
  assert.equal(c.clickhouse.user, 'ingest');
  assert.equal(c.clickhouse.password, 'from-clickhouse-password');
});

test('the file alone is incomplete without its secrets, and says which', () => {
  assert.throws(() => load(['config-file']), /kafka\.sasl\.password|registry: basic auth needs both/);
});

test('every variable the section names is one the config reads', () => {
  const named = new Set(
    [...productionSection().matchAll(/\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b/g)].map((m) => m[1]!),
  );
  const extra = new Set(['INSTABASE_STREAM_CONFIG', 'SASL_SSL', 'SCRAM_SHA_512']);
  const unknown = [...named].filter(
    (n) => !extra.has(n) && !ENV_VARS.includes(n) && !ENV_VARS.includes(n.replace(/_FILE$/, '')),
  );
  assert.deepEqual(unknown, []);
});

/**
 * README.md's configuration table is generated from the config schema (core/config-docs.ts); these tests
 * keep it that way: the section in the README must be exactly what the generator makes now, every key
 * must carry a description, and the env → path table may name only keys that exist.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { z } from 'zod';
import {
  configRows,
  configTableMarkdown,
  currentSection,
  README_PATH,
  replaceSection,
  START_MARKER,
  END_MARKER,
} from '../../../core/config-docs.ts';
import { configSchema, ENV_PATHS, SECRET_PATHS } from '../../../core/config.ts';

test("README.md's configuration table is the one generated from the schema", async () => {
  const readme = readFileSync(README_PATH, 'utf8');
  const section = currentSection(readme);
  assert.ok(section !== undefined, `README.md has ${START_MARKER} … ${END_MARKER}`);
  const expected = await configTableMarkdown();
  // Comparing rows one by one names the first stale key instead of dumping two 80-line tables.
  const have = section.split('\n');
  const want = expected.split('\n');
  const first = want.findIndex((line, i) => have[i] !== line);
  assert.ok(
    first < 0 && have.length === want.length,
    `README.md's configuration table is stale (first difference at line ${first + 1} of the section:\n` +
      `  README:    ${have[first] ?? '(missing)'}\n  generated: ${want[first] ?? '(missing)'}\n` +
      'run `npm run docs:config` to regenerate it',
  );
  // The section sits as --write leaves it, so a rewrite changes nothing.
  assert.equal(replaceSection(readme, expected), readme, 'run `npm run docs:config` to regenerate it');
});

test('every key of the schema has a description', () => {
  const rows = configRows();
  assert.ok(rows.length > 50, `expected every leaf key, got ${rows.length} rows`);
  const undescribed = rows.filter((r) => r.description === '').map((r) => r.key);
  assert.deepEqual(undescribed, [], 'add .describe() to these keys in core/config.ts');
});

test('every env var in the mapping names a real key, and every secret path is a key', () => {
  const keys = new Set(configRows().map((r) => r.key));
  const unknown = ENV_PATHS.filter(([, path]) => !keys.has(path)).map(([env, path]) => `${env} → ${path}`);
  assert.deepEqual(unknown, [], 'env vars mapped to keys the schema does not have');
  assert.deepEqual(
    SECRET_PATHS.filter((p) => !keys.has(p)),
    [],
    'SECRET_PATHS entries the schema does not have',
  );
  // Each mapping shows up in the row of its key.
  for (const [env, path] of ENV_PATHS) {
    assert.ok(
      configRows()
        .find((r) => r.key === path)
        ?.envVars.includes(env),
      `${env} in the row of ${path}`,
    );
  }
});

test('the real table: defaults come from the schema, secrets are marked and never shown', async () => {
  const rows = new Map(configRows().map((r) => [r.key, r]));
  const parsed = configSchema.parse({});
  assert.equal(rows.get('kafka.brokers')?.defaultText, `\`${parsed.kafka.brokers.join('`, `')}\``);
  assert.equal(rows.get('instabase.rps')?.defaultText, String(parsed.instabase.rps));
  assert.equal(rows.get('kafka.auditRetentionMs')?.defaultText, '2592000000 (30 days)');
  assert.equal(rows.get('sinks.flushBytes')?.defaultText, '33554432 (32 MiB)');
  assert.equal(rows.get('producers.resources')?.defaultText, 'all 10');
  assert.equal(rows.get('producers.files')?.defaultText, '`[]`');
  // Both options of the SASL union contribute their keys.
  for (const key of ['mechanism', 'username', 'password', 'token', 'tokenFile']) {
    assert.ok(rows.has(`kafka.sasl.${key}`), `kafka.sasl.${key}`);
  }
  assert.ok(rows.has('producers.intervalsMs.<resource>'));
  for (const path of SECRET_PATHS) assert.equal(rows.get(path)?.secret, true, path);
  const table = await configTableMarkdown();
  assert.match(table, /\| `CLICKHOUSE_PASSWORD` \(`_FILE`\)\s*\| empty\s*\| \*\*secret\*\*;/);
  assert.match(table, /\| `KAFKA_BROKERS`\s*\| `127\.0\.0\.1:9092`/);
});

test('a made-up schema: a missing description is refused, a secret default is hidden', async () => {
  const schema = z.strictObject({
    a: z
      .strictObject({
        plain: z.number().default(3).describe('a number'),
        key: z.string().default('hunter2').describe('a secret with a default'),
        bare: z.boolean().default(true),
      })
      .prefault({}),
  });
  const source = { schema, envPaths: [['A_KEY', 'a.key']] as const, secretPaths: ['a.key'] };
  const rows = configRows(source);
  assert.deepEqual(
    rows.map((r) => [r.key, r.envVars, r.defaultText, r.description]),
    [
      ['a.plain', [], '3', 'a number'],
      ['a.key', ['A_KEY'], '***', 'a secret with a default'],
      ['a.bare', [], '`true`', ''],
    ],
  );
  await assert.rejects(configTableMarkdown(source), /without a description.*a\.bare/);
  const described = z.strictObject({
    a: z.strictObject({ key: z.string().default('hunter2').describe('a secret') }).prefault({}),
  });
  const table = await configTableMarkdown({ ...source, schema: described });
  assert.doesNotMatch(table, /hunter2/);
  assert.match(table, /`A_KEY` \(`_FILE`\)/);
});

test('replaceSection rewrites only what lies between the markers', () => {
  const readme = `intro\n\n${START_MARKER}\n\nold table\n\n${END_MARKER}\n\noutro\n`;
  const out = replaceSection(readme, 'new table\n');
  assert.equal(out, `intro\n\n${START_MARKER}\n\nnew table\n\n${END_MARKER}\n\noutro\n`);
  assert.equal(currentSection(out), 'new table\n');
  assert.throws(() => replaceSection('no markers here\n', 'x\n'), /config-table:start/);
});

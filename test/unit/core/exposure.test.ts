import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../core/config.ts';
import { isLoopback, warnIfExposed } from '../../../core/exposure.ts';

function recorder() {
  const lines: Array<{ obj: unknown; msg: string }> = [];
  return { lines, logger: { warn: (obj: unknown, msg: string) => void lines.push({ obj, msg }) } };
}

test('loopback addresses are recognised, everything else is not', () => {
  for (const host of [
    '127.0.0.1',
    '127.8.9.10',
    'localhost',
    'LOCALHOST',
    'api.localhost',
    '::1',
    '[::1]',
    '::ffff:127.0.0.1',
  ]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (const host of [
    '0.0.0.0',
    '::',
    '',
    '10.0.0.5',
    '192.168.1.2',
    'example.com',
    '::ffff:10.0.0.1',
    'fe80::1',
  ]) {
    assert.equal(isLoopback(host), false, host);
  }
});

test('no warning on loopback, with or without a token', () => {
  const { lines, logger } = recorder();
  assert.equal(warnIfExposed('127.0.0.1', undefined, logger as never), false);
  assert.equal(warnIfExposed('::1', 'tok', logger as never), false);
  assert.equal(lines.length, 0);
});

test('no warning beyond loopback when a dashboard token is set', () => {
  const { lines, logger } = recorder();
  assert.equal(warnIfExposed('0.0.0.0', 'a-dashboard-token', logger as never), false);
  assert.equal(lines.length, 0);
});

test('a warning naming the interface and the fix when exposed without a token', () => {
  const { lines, logger } = recorder();
  assert.equal(warnIfExposed('0.0.0.0', undefined, logger as never), true);
  assert.equal(warnIfExposed('10.1.2.3', '', logger as never), true);
  assert.equal(lines.length, 2);
  assert.match(lines[0]!.msg, /every network interface without DASHBOARD_TOKEN/);
  assert.match(lines[0]!.msg, /HTTP_HOST=127\.0\.0\.1/);
  assert.match(lines[1]!.msg, /listen on 10\.1\.2\.3 without DASHBOARD_TOKEN/);
  assert.deepEqual(lines[1]!.obj, { host: '10.1.2.3' });
});

test('the http server default (config http.host) is loopback', () => {
  const config = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'exp-')) });
  assert.equal(isLoopback(config.http.host), true);
});

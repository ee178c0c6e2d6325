/**
 * `npm run stack -- up`, `npm test` and `npm start` all reach the stack's prerequisite check before they
 * fetch or start anything. Each runs here as a child on a PATH that holds only node, so `mvn` is missing
 * on every machine, with STACK_AUTO_INSTALL=0 so that nothing is installed even as root: each must stop
 * with the exact apt-get command and leave no server behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function sandbox(t: { after(fn: () => void): void }): { env: NodeJS.ProcessEnv; stackDir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'entry-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const stackDir = path.join(dir, 'stack');
  const env: NodeJS.ProcessEnv = {
    HOME: process.env.HOME,
    PATH: bin,
    STACK_DIR: stackDir,
    STACK_AUTO_INSTALL: '0',
    // Unused ports, should anything get as far as starting (it must not).
    STACK_KAFKA_PORT: '29092',
    STACK_KAFKA_CONTROLLER_PORT: '29093',
    STACK_REGISTRY_PORT: '28081',
    STACK_REGISTRY_MANAGEMENT_PORT: '28091',
    STACK_CLICKHOUSE_HTTP_PORT: '28123',
    STACK_CLICKHOUSE_TCP_PORT: '29000',
  };
  return { env, stackDir };
}

function run(args: string[], env: NodeJS.ProcessEnv) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: res.status, out: `${res.stdout}\n${res.stderr}` };
}

const APT = /apt-get update && apt-get install -y --no-install-recommends [a-z0-9 .-]*\bmaven\b/;

describe('every entry point checks the machine before fetching or starting anything', () => {
  for (const [name, args] of [
    ['npm run stack -- up', ['stack/cli.ts', 'up']],
    ['npm test (with an integration test)', ['test/run.ts', 'integration/smoke']],
    ['npm start', ['cli/main.ts', 'start']],
  ] as const) {
    it(name, { timeout: 150_000 }, (t) => {
      const { env, stackDir } = sandbox(t);
      const res = run([...args], env);
      assert.notEqual(res.status, 0, res.out);
      assert.match(res.out, /missing on this machine: [^\n]*mvn/, res.out);
      assert.match(res.out, /STACK_AUTO_INSTALL=0/);
      assert.match(res.out, APT, res.out);
      const pids = fs.existsSync(path.join(stackDir, 'run'))
        ? fs.readdirSync(path.join(stackDir, 'run'))
        : [];
      assert.deepEqual(pids, [], 'a server was started');
      assert.equal(fs.existsSync(path.join(stackDir, 'lib')), false, 'something was fetched');
    });
  }
});

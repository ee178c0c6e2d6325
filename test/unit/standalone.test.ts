/**
 * The repository stands alone: a clone of the committed HEAD, in an empty folder with nothing beside it
 * (no sibling shared/), runs the contract tests against its own vendored OpenAPI files. Uncommitted
 * changes are deliberately invisible here: what counts is what a fresh clone gets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function git(args: string[], cwd: string): string {
  const res = spawnSync('git', args, { cwd, encoding: 'utf8' });
  assert.equal(res.status, 0, `git ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

describe('a clone of the repository on its own', () => {
  it('passes the contract tests with no shared/ beside it', { timeout: 300_000 }, (t) => {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'standalone-'));
    t.after(() => rmSync(parent, { recursive: true, force: true }));
    const clone = path.join(parent, 'instabase-stream');
    git(['clone', '--quiet', '--no-hardlinks', ROOT, clone], parent);
    assert.deepEqual(readdirSync(parent), ['instabase-stream'], 'the clone has a sibling');
    assert.ok(existsSync(path.join(clone, 'vendor', 'instabase-api', 'openapi.yaml')));

    // The repo's own node_modules, not a fresh `npm ci`: the point is the repository's files, and an
    // install would take minutes and need the network.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.INSTABASE_OPENAPI_DIR; // the clone must find the spec on its own
    delete env.NODE_TEST_CONTEXT; // else the child's runner reports to ours instead of printing
    const res = spawnSync('npm', ['test', '--', 'contract'], { cwd: clone, env, encoding: 'utf8' });
    const out = `${res.stdout}\n${res.stderr}`;
    assert.equal(res.status, 0, `npm test -- contract failed in the clone:\n${out.slice(-4000)}`);
    assert.doesNotMatch(out, /OpenAPI file not found/);
    const passed = /^ℹ pass (\d+)$/m.exec(out);
    assert.ok(passed && Number(passed[1]) > 0, `no contract test ran:\n${out.slice(-2000)}`);
    assert.match(out, /^ℹ fail 0$/m);
  });

  // Paths that leave the repository break in a clone (links in docs, comments that send a reader
  // elsewhere); the vendored README may say where its files came from, but names no path.
  it('names no path outside the repository in tracked files', () => {
    const pattern = String.raw`\.\./shared/|shared/(instabase-api|CONVENTIONS)`;
    const res = spawnSync('git', ['grep', '-n', '-I', '-E', pattern], { cwd: ROOT, encoding: 'utf8' });
    assert.ok(res.status === 0 || res.status === 1, `git grep failed: ${res.stderr}`); // 1: no match
    const hits = res.stdout
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('test/unit/standalone.test.ts:'));
    assert.deepEqual(hits, []);
  });
});

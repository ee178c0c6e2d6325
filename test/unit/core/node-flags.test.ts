// Every way this repository starts a sink passes SINK_NODE_FLAGS on node's command line (why:
// core/node-flags.ts), and node takes them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { missingSinkNodeFlags, SINK_NODE_FLAGS } from '../../../core/node-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const flags = SINK_NODE_FLAGS.join(' ');

describe('the sinks’ node flags', () => {
  it('are reported missing from a command line without them, and only then', () => {
    assert.deepEqual(missingSinkNodeFlags([]), [...SINK_NODE_FLAGS]);
    assert.deepEqual(missingSinkNodeFlags(['--max-semi-space-size=4']), [...SINK_NODE_FLAGS]);
    assert.deepEqual(missingSinkNodeFlags(['--max-semi-space-size=4', ...SINK_NODE_FLAGS]), []);
  });

  it('are taken by this node without a word', () => {
    const res = spawnSync(process.execPath, [...SINK_NODE_FLAGS, '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stderr, '');
  });

  it('are on the command line of the npm scripts that run a sink, the bench included', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.start!, new RegExp(`\\bnode ${flags} dist/cli/main\\.js start$`));
    assert.match(scripts.sinks!, new RegExp(`\\bnode ${flags} dist/cli/main\\.js sinks$`));
    // The sink bench runs the sink in its own process.
    assert.match(scripts.bench!, new RegExp(`^node ${flags} --import tsx test/bench/main\\.ts$`));
  });

  it('are in the image’s ENTRYPOINT, which the compose file’s sinks use', () => {
    const entry = read('Dockerfile')
      .split('\n')
      .filter((l) => l.startsWith('ENTRYPOINT'))
      .pop();
    assert.deepEqual(JSON.parse(entry!.slice('ENTRYPOINT'.length)), [
      'node',
      ...SINK_NODE_FLAGS,
      'dist/cli/main.js',
    ]);
    const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { entrypoint?: unknown; command?: unknown }>;
    };
    assert.deepEqual(compose.services.sinks!.command, ['sinks']);
    assert.equal(compose.services.sinks!.entrypoint, undefined, 'the sinks keep the image’s ENTRYPOINT');
  });

  it('are in the shebang of the instabase-stream bin, which runs every command', () => {
    assert.equal(read('cli/bin.js').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
    const res = spawnSync(path.join(ROOT, 'cli/bin.js'), ['--help'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Usage: instabase-stream/);
  });
});

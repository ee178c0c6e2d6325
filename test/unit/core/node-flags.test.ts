// Every way this repository starts a sink passes SINK_NODE_FLAGS on node's command line (why:
// core/node-flags.ts), and node takes them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import {
  cliNodeArgs,
  isSinkNodeFlag,
  missingSinkNodeFlags,
  SINK_NODE_FLAGS,
} from '../../../core/node-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const flags = SINK_NODE_FLAGS.join(' ');

describe('the sinks’ node flags', () => {
  it('are reported missing from a command line without them, and only then', () => {
    assert.deepEqual(missingSinkNodeFlags([]), [...SINK_NODE_FLAGS]);
    assert.deepEqual(missingSinkNodeFlags(['--max-semi-space-size=4']), [...SINK_NODE_FLAGS]);
    assert.deepEqual(missingSinkNodeFlags(['--max-semi-space-size=4', ...SINK_NODE_FLAGS]), []);
  });

  it('are recognized however V8 would read them', () => {
    assert.deepEqual(missingSinkNodeFlags(['--no_memory_reducer']), []);
    assert.deepEqual(missingSinkNodeFlags(['--nomemory-reducer']), []);
    assert.equal(isSinkNodeFlag('--no-memory-reducer'), true);
    assert.equal(isSinkNodeFlag('--memory-reducer'), false);
    assert.equal(isSinkNodeFlag('--no-memory-reducer-favors-memory'), false);
  });

  it('go before the CLI of a command that runs a sink, and only of one', () => {
    const globals = ['--config', '/tmp/start/sinks.json'];
    for (const command of [['sinks'], ['start', '--no-sim'], ['replay', '--table', 'x']])
      assert.deepEqual(cliNodeArgs('cli.js', globals, command), [
        ...SINK_NODE_FLAGS,
        'cli.js',
        ...globals,
        ...command,
      ]);
    // A config path or an option's value that reads like a command is not one.
    for (const command of [['producers', '--resources', 'sinks'], ['status']])
      assert.deepEqual(cliNodeArgs('cli.js', globals, command), ['cli.js', ...globals, ...command]);
  });

  it('are what the tests start their sink processes and node --test with', () => {
    for (const file of [
      'test/helpers/daemon-process.ts',
      'test/helpers/sink-process.ts',
      'test/integration/clickhouse-cluster.test.ts',
    ])
      assert.match(read(file), /cliNodeArgs\(\s*builtModule\('cli\/main\.ts'\)/, file);
    assert.match(read('test/run.ts'), /const args = \[[^\]]*\.\.\.SINK_NODE_FLAGS,/);
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

  it('reach node through the instabase-stream bin, which runs every command', (t) => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    assert.equal(pkg.bin['instabase-stream'], 'cli/bin.js');
    assert.equal(read('cli/bin.js').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
    // The shebang needs env -S (GNU coreutils 8.30 and later, BSD); a preload prints node's execArgv.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ibs-node-flags-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const preload = path.join(dir, 'print-exec-argv.cjs');
    writeFileSync(preload, "process.stderr.write('execArgv ' + JSON.stringify(process.execArgv) + '\\n');\n");
    const res = spawnSync(path.join(ROOT, 'cli/bin.js'), ['--help'], {
      encoding: 'utf8',
      env: {
        ...process.env,
        // This node, not another one on PATH.
        PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
        NODE_OPTIONS: `--require ${preload}`,
      },
    });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Usage: instabase-stream/);
    const execArgv = JSON.parse(/^execArgv (.*)$/m.exec(res.stderr)![1]!) as string[];
    assert.deepEqual(missingSinkNodeFlags(execArgv), [], res.stderr);
  });
});

/**
 * The build (dist/, `npm run build`) as the Docker image and `npm start` run it: plain node, no tsx. The
 * daemons' behaviour from the build is what the crash suite and the other process tests check; this file
 * covers what only the build can get wrong: the entry points it delegates to (`sim`, `stack`), files
 * read at run time from the package's root rather than from beside the compiled module (the .avsc
 * schemas, the dashboard's static files), and that nothing in it still needs a TypeScript loader.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PACKAGE_ROOT } from '../../core/package-root.ts';
import { builtModule } from '../helpers/built.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { uniqueName } from '../helpers/pipeline.ts';
import { testEndpoints } from '../helpers/stack-env.ts';

const CLI = builtModule('cli/main.ts');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('the build (dist/)', () => {
  test('runs the CLI and the entry points it delegates to with plain node', () => {
    const help = cli(['--help']);
    assert.equal(help.status, 0, help.err);
    for (const command of ['start', 'producers', 'sinks', 'replay', 'sim', 'stack']) {
      assert.match(help.out, new RegExp(`^\\s+${command}\\b`, 'm'), `--help lacks ${command}`);
    }
    const sim = cli(['sim', '--help']);
    assert.equal(sim.status, 0, sim.err);
    assert.match(sim.out, /^Usage: instabase-sim/m);
    const stack = cli(['stack', '--help']);
    assert.equal(stack.status, 0, stack.err);
    assert.match(stack.out, /^usage: npm run stack -- <command>/m);
  });

  test('reads every resource schema from the package root: `schemas check` lists each subject', () => {
    const prefix = `${uniqueName('built')}.`;
    const r = cli(['schemas', 'check'], {
      SCHEMA_REGISTRY_URL: testEndpoints().schemaRegistryUrl,
      TOPIC_PREFIX: prefix,
    });
    assert.equal(r.status, 0, r.err);
    const subjects = r.out
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    assert.deepEqual(
      subjects.map(([s]) => s).sort(),
      RESOURCE_NAMES.flatMap((n) => [`${prefix}${n}-value`, `${prefix}${n}-key`]).sort(),
    );
    assert.ok(
      subjects.every(([, state]) => state === 'new'),
      r.out,
    );
  });

  test('imports no .ts module and not tsx', () => {
    const offenders: string[] = [];
    for (const rel of fs.readdirSync(path.join(PACKAGE_ROOT, 'dist'), { recursive: true }) as string[]) {
      if (!rel.endsWith('.js') || rel.startsWith(`test${path.sep}`)) continue;
      const code = fs
        .readFileSync(path.join(PACKAGE_ROOT, 'dist', rel), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      // Static and literal dynamic imports of a relative .ts module; a template (sim/modules.ts) goes
      // through TypeScript's runtime rewrite, which the first test runs.
      if (/(?:from\s+|import\s*\(\s*)["']\.{1,2}\/[^"']+\.ts["']/.test(code)) offenders.push(rel);
      if (/["']tsx(?:\/[^"']*)?["']/.test(code)) offenders.push(`${rel} (imports tsx)`);
    }
    assert.deepEqual(offenders, []);
  });

  test("serves the dashboard's page and assets from the package root", () => {
    // The built dashboard module in a process of its own, behind a plain HTTP server; it prints the
    // SHA-256 of each body it serves, compared here with the files it must serve.
    const script = `
      import http from 'node:http';
      import { createHash } from 'node:crypto';
      const { loadConfig } = await import(${JSON.stringify(builtModule('core/config.ts'))});
      const { createDashboard } = await import(${JSON.stringify(builtModule('cli/dashboard.ts'))});
      const dashboard = createDashboard(loadConfig({ env: {}, cwd: '/' }));
      const server = http.createServer(async (req, res) => {
        if (!(await dashboard.routes[0](req, res, new URL(req.url, 'http://x')))) res.writeHead(404).end();
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const out = {};
      for (const p of ['/assets/app.js', '/assets/app.css', '/assets/chart.umd.min.js']) {
        const r = await fetch('http://127.0.0.1:' + server.address().port + p);
        out[p] = r.status + ' ' + createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex');
      }
      const page = await fetch('http://127.0.0.1:' + server.address().port + '/');
      out['/'] = page.status + ' ' + ((await page.text()).includes('/assets/app.js') ? 'page' : 'not the page');
      process.stdout.write(JSON.stringify(out));
      server.close();
      await dashboard.close();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const sha = (file: string) => `200 ${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
    const chart = path.join(
      path.dirname(createRequire(import.meta.url).resolve('chart.js')),
      'chart.umd.min.js',
    );
    assert.deepEqual(JSON.parse(r.stdout), {
      '/assets/app.js': sha(path.join(PACKAGE_ROOT, 'cli', 'dashboard', 'static', 'app.js')),
      '/assets/app.css': sha(path.join(PACKAGE_ROOT, 'cli', 'dashboard', 'static', 'app.css')),
      '/assets/chart.umd.min.js': sha(chart),
      '/': '200 page',
    });
  });
});

/**
 * The test entry point (`npm test`). Node 20's test runner has no global setup, so this wrapper picks the
 * test files, brings up the local stack when an integration test is among them, runs node's runner as a
 * child with the endpoints in its environment, and stops only what it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SINK_NODE_FLAGS } from '../core/node-flags.ts';
import { build } from './helpers/built.ts';
import { ensureStack, StackError, stopStack, type ServiceName, type StackEnv } from '../stack/index.ts';
import { loadStackConfig, paths } from '../stack/config.ts';
import { ensurePrerequisites, PrerequisiteError, type Requirement } from '../stack/prerequisites.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIR = path.join(ROOT, 'test');
const INTEGRATION_DIR = `integration${path.sep}`;

const USAGE = `usage: npm test -- [options] [path words...]

  npm test                       every test/**/*.test.ts; starts the local stack if an integration test is in
  npm test -- --unit             only tests outside test/integration/, no stack
  npm test -- smoke registry     only files whose path contains one of the words
  npm test -- --keep-stack       leave what the run started running, for fast reruns
  npm test -- --name PATTERN     only tests whose name matches (node's --test-name-pattern)
  npm test -- --test-timeout MS  per-test (and per-file) timeout for tests that set none (default 600000)

Integration tests use KAFKA_BROKERS, SCHEMA_REGISTRY_URL and CLICKHOUSE_URL when set; the stack starts
only the services whose variable is unset.`;

function say(line: string): void {
  process.stderr.write(`[test] ${line}\n`);
}

function collect(): string[] {
  return (fs.readdirSync(TEST_DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.test.ts') && !f.split(path.sep).includes('node_modules'))
    .map((f) => path.join('test', f))
    .sort();
}

function isIntegration(file: string): boolean {
  return path.relative('test', file).startsWith(INTEGRATION_DIR);
}

/**
 * The dashboard's browser test drives Debian's chromium through playwright-core (no browser download).
 * It is got like the stack's programs, with apt as root, so that `npm test` passes on a fresh machine;
 * fonts-liberation is only a recommendation of chromium's, but without it the screenshot has no text.
 */
const BROWSER_TEST = path.join('test', 'integration', 'dashboard.test.ts');
const CHROMIUM: Requirement = {
  what: "Chromium (the dashboard's browser test)",
  apt: ['chromium', 'fonts-liberation'],
  present: () => fs.existsSync('/usr/bin/chromium'),
};

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      unit: { type: 'boolean' },
      'keep-stack': { type: 'boolean' },
      name: { type: 'string', multiple: true },
      'test-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }

  let files = collect();
  if (values.unit) files = files.filter((f) => !isIntegration(f));
  if (positionals.length > 0) files = files.filter((f) => positionals.some((p) => f.includes(p)));
  if (files.length === 0) {
    if (positionals.length > 0) {
      say(`no test file matches ${positionals.map((p) => `"${p}"`).join(', ')}`);
      return 1;
    }
    say(values.unit ? 'no unit test files yet' : 'no test files found under test/');
    return 0;
  }

  // Ctrl-C reaches the test child through the terminal; the runner itself stays alive to stop the stack
  // it started. A second signal gives up on cleanup.
  let interrupted: NodeJS.Signals | undefined;
  const running: { child?: ChildProcess } = {};
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      say(`${sig} again: exiting without stopping the stack (npm run stack -- down stops it)`);
      process.exit(130);
    }
    interrupted = sig;
    if (running.child?.exitCode === null) running.child.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let started: ServiceName[] = [];
  let stackEnv: Partial<StackEnv> = {};
  if (files.includes(BROWSER_TEST)) {
    try {
      await ensurePrerequisites([CHROMIUM], {
        progress: (l) => process.stderr.write(`[test] ${l}\n`),
        logFile: path.join(paths.logs(loadStackConfig()), 'apt.log'),
      });
    } catch (err) {
      if (!(err instanceof PrerequisiteError)) throw err;
      say(err.message);
      return 1;
    }
  }
  if (files.some(isIntegration)) {
    // Integration tests start the daemons from the build, as the Docker image runs them (helpers/built.ts).
    say('building dist/ (npm run build)');
    try {
      await build();
    } catch (err) {
      say(err instanceof Error ? err.message : String(err));
      return 1;
    }
    try {
      const res = await ensureStack({ progress: (l) => process.stderr.write(`[stack] ${l}\n`) });
      started = res.started;
      stackEnv = res.env;
    } catch (err) {
      say(`could not bring up the stack: ${err instanceof Error ? err.message : String(err)}`);
      if (err instanceof StackError) say(`full log: ${err.logFile}`);
      return 1;
    }
  }

  // Every wait is bounded: a test with no timeout of its own gets this one, and a file whose tests are done
  // but that leaks a socket or timer does not keep the run (and CI) waiting.
  // Node applies it to each file as a whole too: the crash suite's two runs take 3-5 minutes on 2 busy cores.
  const testTimeout = Number(values['test-timeout'] ?? 600_000);
  if (!Number.isInteger(testTimeout) || testTimeout <= 0) {
    say(`--test-timeout ${values['test-timeout']} is not a positive number of milliseconds`);
    return 2;
  }
  const args = [
    // Tests run sinks in their own processes too, which start as the README's commands do.
    ...SINK_NODE_FLAGS,
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    `--test-timeout=${testTimeout}`,
    '--test-force-exit',
  ];
  for (const pattern of values.name ?? []) args.push(`--test-name-pattern=${pattern}`);
  args.push(...files);
  say(`running ${files.length} file(s): ${files.join(' ')}`);

  if (interrupted) {
    await stopStack(started, { progress: (l) => process.stderr.write(`[stack] ${l}\n`) });
    return 128 + os.constants.signals[interrupted];
  }
  const runner = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ...stackEnv, NODE_ENV: process.env.NODE_ENV ?? 'test' },
  });
  running.child = runner;
  const code = await new Promise<number>((resolve) => {
    runner.on('error', (err) => {
      say(`could not run node's test runner: ${err.message}`);
      resolve(1);
    });
    runner.on('exit', (c, signal) => resolve(c ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });

  if (started.length > 0) {
    if (values['keep-stack']) {
      say(`left ${started.join(', ')} running (npm run stack -- down stops them)`);
    } else {
      await stopStack(started, { progress: (l) => process.stderr.write(`[stack] ${l}\n`) });
    }
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);

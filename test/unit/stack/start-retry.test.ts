import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadStackConfig, type StackConfig } from '../../../stack/config.ts';
import type { Service } from '../../../stack/service.ts';
import { StackError, startService } from '../../../stack/stack.ts';

/**
 * A stand-in server (a shell script) that ends its first `failures` starts as `how` says, then stays up
 * and writes a ready file, which is what its health probe looks at. Real processes, so the exit status
 * is what the kernel reports; only the server is fake.
 */
function flakyService(dir: string, failures: number, how: 'SIGKILL' | 'exit 3'): Service {
  const count = path.join(dir, 'starts');
  const ready = path.join(dir, 'ready');
  const die = how === 'SIGKILL' ? 'kill -KILL $$' : 'exit 3';
  const script =
    `n=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}; ` +
    `if [ $n -le ${failures} ]; then ${die}; fi; touch ${ready}; exec sleep 60`;
  return {
    name: 'clickhouse',
    localEndpoint: () => 'fake://',
    ports: () => [],
    install: () => Promise.resolve(),
    prepare: (cfg) =>
      Promise.resolve({
        command: 'bash',
        args: ['-c', script, `marker-${dir}`],
        cwd: dir,
        logFile: path.join(cfg.dir, 'logs', 'clickhouse.log'),
        marker: `marker-${dir}`,
      }),
    healthy: () => Promise.resolve(fs.existsSync(ready)),
  };
}

function starts(dir: string): number {
  return Number(fs.readFileSync(path.join(dir, 'starts'), 'utf8'));
}

describe('startService: a server that exits during start-up', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'start-retry-'));
  const pids: number[] = [];
  after(() => {
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  function setup(name: string): { cfg: StackConfig; dir: string; lines: string[] } {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    const cfg = loadStackConfig({ dir, healthTimeoutMs: 20_000 }, {});
    return { cfg, dir, lines: [] };
  }

  function pidOf(cfg: StackConfig): number {
    const rec = JSON.parse(fs.readFileSync(path.join(cfg.dir, 'run', 'clickhouse.pid'), 'utf8')) as {
      pid: number;
    };
    return rec.pid;
  }

  it('is started again, and each killed start is reported with its signal', async () => {
    const { cfg, dir, lines } = setup('killed-twice');
    const svc = flakyService(dir, 2, 'SIGKILL');
    const started = await startService(cfg, svc, {} as never, (l) => lines.push(l));
    pids.push(pidOf(cfg));
    assert.equal(started, true);
    assert.equal(starts(dir), 3);
    const again = lines.filter((l) => l.includes('exited during startup'));
    assert.equal(again.length, 2, lines.join('\n'));
    for (const [i, l] of again.entries()) {
      assert.match(l, /killed by SIGKILL/);
      assert.match(l, new RegExp(`attempt ${i + 2} of 3`));
    }
    assert.ok(lines.at(-1)?.startsWith('clickhouse healthy'), lines.join('\n'));
  });

  it('gives up after three starts, naming how each one ended', async () => {
    const { cfg, dir, lines } = setup('always-exits');
    const svc = flakyService(dir, 99, 'exit 3');
    await assert.rejects(
      startService(cfg, svc, {} as never, (l) => lines.push(l)),
      (err: unknown) => {
        assert.ok(err instanceof StackError);
        assert.match(
          err.message,
          /^clickhouse: exited during startup \(pid \d+, exit code 3\); earlier attempt 1: exit code 3, attempt 2: exit code 3\n/,
        );
        return true;
      },
    );
    assert.equal(starts(dir), 3);
    assert.equal(fs.existsSync(path.join(cfg.dir, 'run', 'clickhouse.pid')), false);
  });
});

// The simulator's own surface: the CLI entry, the /__sim control routes, the clock, and its memory bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startSimulator } from '../../sim/index.ts';

const json = async (url: string, init: { method?: 'GET' | 'POST'; body?: string; token?: string } = {}) => {
  const res = await request(url, {
    method: init.method ?? 'GET',
    body: init.body,
    headers: init.token ? { authorization: `Bearer ${init.token}` } : {},
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
};

describe('simulator control', () => {
  it('serves state, ground truth, clock and fault controls over HTTP', async () => {
    const sim = await startSimulator({ port: 0, seed: 'control', scale: { batches: 30 }, badRecords: 0.2 });
    try {
      const state = await json(`${sim.origin}/__sim/state`);
      assert.equal((state.body.counts as Record<string, number>).batches, 30);
      const truth = await json(`${sim.origin}/__sim/expected/batches`);
      assert.deepEqual(truth.body, sim.expected.batches());
      const advanced = await json(`${sim.origin}/__sim/advance?ms=600000`, { method: 'POST' });
      assert.equal(advanced.body.now, sim.now());
      assert.equal(sim.expected.batches().total, 30 + 20);
      const faults = await json(`${sim.origin}/__sim/faults`, {
        method: 'POST',
        body: '{"rate503":1,"maxConsecutive":5}',
      });
      assert.equal(faults.body.rate503, 1);
      assert.equal((await json(`${sim.url}/v2/batches`, { token: sim.token })).status, 503);
      assert.equal((await json(`${sim.origin}/__sim/expected/nothing`)).status, 404);
    } finally {
      await sim.close();
    }
  });

  it('a million audit entries cost no memory: they are computed per request', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const sim = await startSimulator({ port: 0, scale: { auditLogs: 1_000_000 } });
    try {
      const res = await json(`${sim.url}/v1/auditlogs`, {
        method: 'POST',
        token: sim.token,
        body: '{"start":999990,"size":50}',
      });
      const results = (res.body.data as { results: Array<{ details: { request_id: string } }> }).results;
      assert.equal(results.length, 10);
      assert.equal(results[9]!.details.request_id, 'req-999999');
      assert.equal(sim.expected.auditLogs().total, 1_000_000);
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 100 * 1024 * 1024);
    } finally {
      await sim.close();
    }
  });

  it('the instabase-sim bin starts, prints its URL and token, and stops on SIGTERM', async () => {
    const bin = fileURLToPath(new URL('../../sim/bin.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, '--port', '0', '--token', 'cli-token', '--batches', '7', '--fault-429', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          const m = /INSTABASE_API_URL=(\S+)/.exec(out);
          if (m && out.includes('INSTABASE_API_TOKEN=cli-token')) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`sim exited ${code}: ${out}`)));
      });
      const res = await json(`${url}/v2/batches`, { token: 'cli-token' });
      assert.equal((res.body.batches as unknown[]).length, 7);
      assert.equal((await json(`${url}/v2/batches`, { token: 'nope' })).status, 401);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});

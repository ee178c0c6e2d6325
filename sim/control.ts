// The control routes under /__sim/: the state, the clock, the fault knobs, deletions and the ground truth.
import type { ServerResponse } from 'node:http';
import type { EndlessMode, RemovableKind, SimData } from './data.ts';
import type { FaultOptions } from './faults.ts';
import { HttpError, writeJson } from './http.ts';
import { GROUND_TRUTH } from './routes.ts';
import type { Expected } from './serve.ts';

/** What the control routes read and move. */
export interface Controlled {
  data: SimData;
  now(): number;
  endless(): EndlessMode;
  faults(): FaultOptions;
  stats(): unknown;
  advance(ms: number): void;
  setFaults(faults: Partial<FaultOptions>): void;
  expected: Expected;
}

export function control(sim: Controlled, url: URL, method: string, body: string, res: ServerResponse): void {
  const q = url.searchParams;
  const path = url.pathname;
  const { data } = sim;
  if (path === '/__sim/state' && method === 'GET') {
    const now = sim.now();
    writeJson(res, 200, {
      now,
      nowIso: new Date(now).toISOString(),
      seed: data.opts.seed,
      endless: sim.endless(),
      counts: {
        batches: data.batchCount(now),
        runs: data.runCount(now),
        audit_logs: data.auditCount(now),
        conversations: data.opts.scale.conversations,
        queries: data.opts.scale.queries,
        files: data.opts.scale.files,
      },
      faults: sim.faults(),
      stats: sim.stats(),
    });
    return;
  }
  if (path === '/__sim/advance' && method === 'POST') {
    sim.advance(Number(q.get('ms') ?? 0));
    writeJson(res, 200, { now: sim.now() });
    return;
  }
  if (path === '/__sim/remove' && method === 'POST') {
    try {
      data.remove(body ? (JSON.parse(body) as Partial<Record<RemovableKind, number>>) : {});
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    writeJson(res, 200, { conversations: data.conversationIndexes().length });
    return;
  }
  if (path === '/__sim/faults' && method === 'POST') {
    sim.setFaults(body ? (JSON.parse(body) as Partial<FaultOptions>) : {});
    writeJson(res, 200, sim.faults());
    return;
  }
  if (path.startsWith('/__sim/expected/') && method === 'GET') {
    const what = path.slice('/__sim/expected/'.length);
    const truth = GROUND_TRUTH[what];
    if (!truth) throw new HttpError(404, `no ground truth for ${what}`);
    writeJson(res, 200, truth(sim.expected, q));
    return;
  }
  throw new HttpError(404, `no control route ${method} ${path}`);
}

// GET /v2/apps/runs (from_timestamp, to_timestamp, status, run_id, username, sort_by, order, limit,
// offset) and GET /v2/apps/runs/{run_id}.
import type { RunFilter } from '../data.ts';
import { decodeSegment, enumParam, HttpError, intParam } from '../http.ts';
import { json, list, paging, type Handler, type SimContext, type SimResource } from '../serve.ts';

/** The filters of GET /v2/apps/runs (status may be repeated or comma-separated). */
export function runFilter(q: URLSearchParams): RunFilter {
  return {
    from_timestamp: intParam(q, 'from_timestamp'),
    to_timestamp: intParam(q, 'to_timestamp'),
    status: q
      .getAll('status')
      .flatMap((s) => s.split(','))
      .filter(Boolean),
    run_id: q.get('run_id') ?? undefined,
    username: q.get('username') ?? undefined,
    sort_by: enumParam(q, 'sort_by', ['start_timestamp', 'status'] as const),
    order: enumParam(q, 'order', ['ASCENDING', 'DESCENDING'] as const),
  };
}

/** The index of the run a path names, or a 404. */
export function runOf(ctx: SimContext, runId: string | undefined, t: number): number {
  const j = ctx.data.runIndex(decodeSegment(runId ?? ''), t);
  if (j === undefined) throw new HttpError(404, 'Run not found');
  return j;
}

const listRuns: Handler = (ctx, { query: q, now: t }) => {
  const { offset, limit } = paging(ctx, q, 'offset', 'limit');
  const idx = ctx.data.runIndexes(t, runFilter(q));
  const from = ctx.endless() === 'repeat' ? 0 : offset;
  return json(
    list(
      ctx,
      'runs',
      idx.slice(from, from + limit).map((j) => ctx.data.run(j, t)),
    ),
  );
};

const getRun: Handler = (ctx, { params, now: t }) => json(ctx.data.run(runOf(ctx, params.run_id, t), t));

/** Below a run only its results are served; an unknown run is still "Run not found". */
const belowRun: Handler = (ctx, { params, now: t }) => {
  runOf(ctx, params.run_id, t);
  return undefined;
};

export default {
  routes: [
    { method: 'GET', path: '/v2/apps/runs', handle: listRuns },
    { method: 'GET', path: '/v2/apps/runs/{run_id}', handle: getRun },
    { method: 'GET', path: '/v2/apps/runs/{run_id}/**', handle: belowRun },
  ],
  // The same filters, parsed the same way, as GET /v2/apps/runs.
  groundTruth: (e, q) => e.runs(runFilter(q)),
} satisfies SimResource;

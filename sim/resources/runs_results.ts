// GET /v2/apps/runs/{run_id}/results (file_offset and the four include_* flags).
import type { ResultsOptions } from '../data.ts';
import { boolParam, HttpError, intParam } from '../http.ts';
import { json, type Handler, type SimResource } from '../serve.ts';
import { runOf } from './runs.ts';

const results: Handler = (ctx, { params, query: q, now: t }) => {
  const j = runOf(ctx, params.run_id, t);
  const o: ResultsOptions = {
    fileOffset: intParam(q, 'file_offset') ?? 0,
    reviewResults: boolParam(q, 'include_review_results'),
    confidenceScores: boolParam(q, 'include_confidence_scores'),
    validationResults: boolParam(q, 'include_validation_results'),
    sourceInfo: boolParam(q, 'include_source_info'),
  };
  if (o.fileOffset < 0) throw new HttpError(400, 'file_offset must not be negative');
  return json(ctx.data.results(j, t, o, ctx.endless()));
};

export default {
  routes: [{ method: 'GET', path: '/v2/apps/runs/{run_id}/results', handle: results }],
  groundTruth: (e, q) => e.runResults(q.get('run_id') ?? ''),
} satisfies SimResource;

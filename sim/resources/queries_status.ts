// GET /v2/queries/{query_id}.
import { decodeSegment, HttpError } from '../http.ts';
import { json, type Handler, type SimResource } from '../serve.ts';

const query: Handler = (ctx, { params, now: t }) => {
  const k = ctx.data.queryIndex(decodeSegment(params.query_id ?? ''));
  if (k === undefined) throw new HttpError(404, 'Invalid query uuid passed');
  return json(ctx.data.query(k, t));
};

export default {
  routes: [{ method: 'GET', path: '/v2/queries/{query_id}', handle: query }],
  groundTruth: (e) => e.queryIds().map((id) => ({ query_id: id, ...e.query(id) })),
} satisfies SimResource;

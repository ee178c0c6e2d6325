// GET /v2/batches (limit, offset, workspace, username).
import { json, list, paging, str, type Handler, type SimResource } from '../serve.ts';

const listBatches: Handler = (ctx, { query: q, now: t }) => {
  const { data } = ctx;
  const { offset, limit } = paging(ctx, q, 'offset', 'limit');
  const endless = ctx.endless();
  if (endless === 'infinite')
    return json(
      list(
        ctx,
        'batches',
        Array.from({ length: limit }, (_, k) => data.batch(offset + k, t)),
      ),
    );
  const filter = { workspace: str(q, 'workspace'), username: str(q, 'username') };
  const idx = data.batchIndexes(t, filter, endless === 'repeat' ? 0 : offset, limit);
  return json(
    list(
      ctx,
      'batches',
      idx.map((i) => data.batch(i, t)),
    ),
  );
};

export default {
  routes: [{ method: 'GET', path: '/v2/batches', handle: listBatches }],
  groundTruth: (e, q) => e.batches({ workspace: str(q, 'workspace'), username: str(q, 'username') }),
} satisfies SimResource;

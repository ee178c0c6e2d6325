// GET /v2/batches/{batch_id}/files (page_size, start_token; has_more and next_page_token).
import { decodeSegment, HttpError, intParam } from '../http.ts';
import { json, list, pageSize, type Handler, type SimResource } from '../serve.ts';
import { batchFile, batchFileCount } from './batch_files.data.ts';

/**
 * A page of a batch's files. The token is opaque to clients; here it is the position, in base64 JSON
 * as the spec's example. Endless modes: 'repeat' ignores the token, 'empty' hands back empty pages and
 * the token it was given, 'infinite' always has more.
 */
const batchFilesPage: Handler = (ctx, { params, query: q, now: t }) => {
  const { data } = ctx;
  const i = data.batchIndexOf(decodeSegment(params.batch_id ?? ''), t);
  if (i === undefined) throw new HttpError(404, 'Batch does not exist, or denied access');
  const size = pageSize(ctx, intParam(q, 'page_size'));
  const token = q.get('start_token');
  let from = 0;
  if (token !== null) {
    const decoded = decodeToken(token);
    if (decoded === undefined) throw new HttpError(400, 'start_token is not a token this server handed out');
    from = decoded;
  }
  const endless = ctx.endless();
  if (endless === 'empty')
    return json({ nodes: [], has_more: true, next_page_token: token ?? encodeToken(0) });
  if (endless === 'repeat') from = 0;
  const total = endless === 'infinite' ? Infinity : batchFileCount(data, i, t);
  const end = Math.min(total, from + Math.max(1, size));
  const nodes: unknown[] = [];
  for (let f = from; f < end; f++) nodes.push(batchFile(data, i, f, t));
  const body: Record<string, unknown> = { ...list(ctx, 'nodes', nodes), has_more: end < total };
  if (end < total) body.next_page_token = encodeToken(end);
  return json(body);
};

function encodeToken(position: number): string {
  return Buffer.from(JSON.stringify({ position })).toString('base64');
}

/** The position in a token this server handed out; undefined for anything else. */
function decodeToken(token: string): number | undefined {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { position?: unknown };
    return typeof v.position === 'number' && Number.isSafeInteger(v.position) && v.position >= 0
      ? v.position
      : undefined;
  } catch {
    return undefined;
  }
}

export default {
  routes: [{ method: 'GET', path: '/v2/batches/{batch_id}/files', handle: batchFilesPage }],
  groundTruth: (e, q) => e.batchFiles(q.get('batch_id') ?? ''),
} satisfies SimResource;

// POST /v1/auditlogs (start, size, log_type, email, start_time, end_time in the JSON body).
import type { AuditFilter } from '../data.ts';
import { HttpError } from '../http.ts';
import { json, pageSize, str, type Handler, type SimResource } from '../serve.ts';

const page: Handler = (ctx, { body, now: t }) => {
  const { data } = ctx;
  const req = parseAuditRequest(body);
  const size = pageSize(ctx, req.size ?? undefined);
  const start = req.start ?? 0;
  const sel = data.auditSelection(t, req);
  const endless = ctx.endless();
  const from = endless === 'repeat' ? 0 : start;
  const results: unknown[] = [];
  const end = endless === 'infinite' ? from + size : Math.min(sel.count, from + size);
  for (let k = from; k < end; k++) results.push(data.auditEntry(sel.nth(k)));
  // `data` and `data.results` are optional: with edge values an empty page leaves one of them out.
  if (data.opts.edgeValues && results.length === 0)
    return json(start % 2 === 0 ? { status: 'OK', data: {} } : { status: 'OK' });
  return json({ status: 'OK', data: { results } });
};

function parseAuditRequest(body: string): AuditFilter & { start?: number | null; size?: number | null } {
  // The spec marks the body required (every field in it is optional).
  if (body.trim() === '') throw new HttpError(400, 'request body is required');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, 'request body must be a JSON object');
  }
  const b = parsed as Record<string, unknown>;
  const int = (k: string) => {
    const v = b[k];
    if (v === undefined || v === null) return null;
    // Any size of integer (the spec gives no format): one past the end is simply an empty page.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new HttpError(400, `${k} must be a non-negative integer`);
    return v;
  };
  const text = (k: string) => {
    const v = b[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new HttpError(400, `${k} must be a string`);
    return v;
  };
  return {
    start: int('start'),
    size: int('size'),
    log_type: text('log_type'),
    email: text('email'),
    start_time: text('start_time'),
    end_time: text('end_time'),
  };
}

export default {
  // Matched as written: the API serves no variant of this path.
  routes: [{ method: 'POST', path: '/v1/auditlogs', exact: true, handle: page }],
  groundTruth: (e, q) =>
    e.auditLogs({
      log_type: str(q, 'log_type'),
      email: str(q, 'email'),
      start_time: str(q, 'start_time'),
      end_time: str(q, 'end_time'),
    }),
} satisfies SimResource;

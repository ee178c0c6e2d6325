// HEAD /v2/files/{path}: the file tree, and the files other resources' modules serve (SimResource.headFile:
// a batch's files).
import { decodeSegment } from '../http.ts';
import type { Handler, SimContext, SimResource } from '../serve.ts';

/** A file of another resource's (in the order of core/resources.ts): the first module that names it. */
function otherFile(ctx: SimContext, path: string, now: number): Record<string, string> | undefined {
  for (const r of Object.values(ctx.resources)) {
    const headers = r.headFile?.(ctx.data, path, now);
    if (headers) return headers;
  }
  return undefined;
}

const head: Handler = (ctx, { rest, now: t }) => {
  const { data } = ctx;
  const filePath = rest.map(decodeSegment).join('/');
  const i = data.fileIndex(filePath);
  const headers = i !== undefined ? data.fileHeaders(i) : otherFile(ctx, filePath, t);
  return headers ? { kind: 'head', status: 200, headers } : { kind: 'head', status: 404, headers: {} };
};

export default {
  routes: [{ method: 'HEAD', path: '/v2/files/**', handle: head }],
  groundTruth: (e) => e.files(),
} satisfies SimResource;

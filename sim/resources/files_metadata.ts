// HEAD /v2/files/{path}: the file tree, and every file of every batch.
import { decodeSegment } from '../http.ts';
import type { Handler, SimResource } from '../serve.ts';
import { batchFileHeaders } from './batch_files.data.ts';

const head: Handler = (ctx, { rest, now: t }) => {
  const { data } = ctx;
  const filePath = rest.map(decodeSegment).join('/');
  const i = data.fileIndex(filePath);
  const headers = i !== undefined ? data.fileHeaders(i) : batchFileHeaders(data, filePath, t);
  return headers ? { kind: 'head', status: 200, headers } : { kind: 'head', status: 404, headers: {} };
};

export default {
  routes: [{ method: 'HEAD', path: '/v2/files/**', handle: head }],
  groundTruth: (e) => e.files(),
} satisfies SimResource;

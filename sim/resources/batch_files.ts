// GET /v2/batches/{batch_id}/files (page_size, start_token; has_more and next_page_token), and HEAD
// /v2/files/{path} of each batch file. A batch's files are computed here on SimData's resource API (seed,
// isBad, badVariant, split, the batches' lifecycle), with their scale knob and their ground truth.
import { INT64_MAX, MAX_SAFE, ODD_STRING, type ExpectedList, type Json, type SimData } from '../data.ts';
import { decodeSegment, HttpError, intParam } from '../http.ts';
import { hash } from '../rng.ts';
import {
  json,
  list,
  pageSize,
  type Handler,
  type ScaleKnob,
  type ScaleOf,
  type SimResource,
} from '../serve.ts';

type Obj = { [k: string]: Json };

/** The tag batch files are drawn with (SimResource.hashTag: ../modules.ts refuses one taken). */
const TAG_BATCH_FILE = 19;

const scale = {
  filesPerBatch: {
    default: 3,
    description: 'average files per batch at its creation (0..2x each); every batch update adds one',
  },
} satisfies Record<string, ScaleKnob>;

declare module '../data.ts' {
  interface SimScale extends ScaleOf<typeof scale> {}
}

/** Files of batch i at `now`: those it was created with, plus one per update. */
function batchFileCount(data: SimData, i: number, now: number): number {
  const initial = hash(data.seed, TAG_BATCH_FILE, i) % (2 * data.opts.scale.filesPerBatch + 1);
  // With edge values the first batch has at least the two edge files.
  const base = data.opts.edgeValues && i === 0 ? Math.max(2, initial) : initial;
  return base + data.batchUpdates(i, now);
}

/** The path of file f of batch i, as the files listing names it (with a leading '/'). */
function batchFilePath(data: SimData, i: number, f: number): string {
  return `/acme_org/${data.batchWorkspace(i)}/fs/Instabase Drive/batches/${i + 1}/file-${f}.pdf`;
}

/** File f of batch i: modified when the batch was created, or by the update that added it. */
function batchFileModifiedS(data: SimData, i: number, f: number, now: number): number {
  const initial = batchFileCount(data, i, now) - data.batchUpdates(i, now);
  const at = data.batchCreated(i) + Math.max(0, f - initial + 1) * data.batchUpdatePeriod(i);
  return Math.floor(at / 1000);
}

function batchFileSize(data: SimData, i: number, f: number): number {
  return 1 + (hash(data.seed, TAG_BATCH_FILE, i, f, 1) % 5_000_000);
}

/** A node of GET /v2/batches/{id}/files (components/schemas/listBatchFilesResponse). */
function batchFile(data: SimData, i: number, f: number, now: number): Obj {
  const canWrite = hash(data.seed, TAG_BATCH_FILE, i, f, 2) % 4 !== 0;
  const rec: Obj = {
    full_path: batchFilePath(data, i, f),
    metadata: {
      node_type: 'file',
      size: batchFileSize(data, i, f),
      modified_timestamp: batchFileModifiedS(data, i, f, now),
    },
    perms: { can_read: true, can_write: canWrite, can_delete: canWrite },
    name: `file-${f}.pdf`,
  };
  if (data.opts.edgeValues && i === 0 && f === 0) {
    // The largest int64 size, a time Avro's timestamp-millis cannot carry, an odd name.
    rec.metadata = { node_type: 'file', size: INT64_MAX, modified_timestamp: -MAX_SAFE };
    rec.name = ODD_STRING;
  }
  // No field is required: a node without full_path is keyed by its content.
  if (data.opts.edgeValues && i === 0 && f === 1) delete rec.full_path;
  if (isBadBatchFile(data, i, f)) {
    if (data.badVariant(TAG_BATCH_FILE, i, f) === 0) (rec.metadata as Obj).size = '1 KB';
    else rec.perms = { can_read: 'yes' };
  }
  return rec;
}

/** The edge-value nodes are served valid, so that what they test is not hidden behind a bad record. */
function isBadBatchFile(data: SimData, i: number, f: number): boolean {
  return !(data.opts.edgeValues && i === 0 && f < 2) && data.isBad(TAG_BATCH_FILE, i, f);
}

/** HEAD /v2/files/{path} of a batch's file: its headers if `path` names one that exists at `now`. */
function batchFileHeaders(data: SimData, path: string, now: number): Record<string, string> | undefined {
  const m = /\/batches\/(\d+)\/file-(\d+)\.pdf$/.exec(path);
  if (!m) return undefined;
  const i = Number(m[1]) - 1;
  const f = Number(m[2]);
  if (i >= data.batchCount(now) || f >= batchFileCount(data, i, now)) return undefined;
  if (batchFilePath(data, i, f) !== `/${path}`) return undefined;
  return {
    'content-type': 'application/octet-stream',
    'content-length': String(batchFileSize(data, i, f)),
    'last-modified': new Date(batchFileModifiedS(data, i, f, now) * 1000).toISOString(),
  };
}

/** Keys are full_paths (`withoutId` counts the edge-value node served without one). */
function expectedBatchFiles(data: SimData, batchId: string, now: number): ExpectedList<string> {
  const i = data.batchIndexOf(batchId, now);
  if (i === undefined) return { total: 0, keys: [], invalidKeys: [] };
  const files = Array.from({ length: batchFileCount(data, i, now) }, (_, f) => f);
  return data.split(
    files,
    (f) => (data.opts.edgeValues && i === 0 && f === 1 ? undefined : batchFilePath(data, i, f)),
    (f) => isBadBatchFile(data, i, f),
  );
}

const expected = (data: SimData, now: () => number) => ({
  /** Full paths of a batch's files (`withoutId` counts the edge-value node served without one). */
  batchFiles: (batchId: string): ExpectedList<string> => expectedBatchFiles(data, batchId, now()),
});

declare module '../serve.ts' {
  interface Expected extends ReturnType<typeof expected> {}
}

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
  scale,
  expected,
  hashTag: TAG_BATCH_FILE,
  headFile: batchFileHeaders,
} satisfies SimResource;

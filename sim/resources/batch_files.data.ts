// The simulated files of a batch (GET /v2/batches/{id}/files, and HEAD /v2/files/{path} of each): built
// on SimData's resource API (seed, isBad, badVariant, split, the batches' lifecycle), so batch_files'
// data lives with its module rather than in SimData. A module apart from ./batch_files.ts so that
// ../serve.ts (the ground truth) and ./files_metadata.ts can read it without importing the routes.
import { INT64_MAX, MAX_SAFE, ODD_STRING, type ExpectedList, type Json, type SimData } from '../data.ts';
import { hash } from '../rng.ts';

type Obj = { [k: string]: Json };

/** This resource's hash tag; unique among the tags of sim/data.ts (its TAG table marks 19 as taken). */
const TAG_BATCH_FILE = 19;

/** Files of batch i at `now`: those it was created with, plus one per update. */
export function batchFileCount(data: SimData, i: number, now: number): number {
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
export function batchFile(data: SimData, i: number, f: number, now: number): Obj {
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
export function batchFileHeaders(
  data: SimData,
  path: string,
  now: number,
): Record<string, string> | undefined {
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
export function expectedBatchFiles(data: SimData, batchId: string, now: number): ExpectedList<string> {
  const i = data.batchIndexOf(batchId, now);
  if (i === undefined) return { total: 0, keys: [], invalidKeys: [] };
  const files = Array.from({ length: batchFileCount(data, i, now) }, (_, f) => f);
  return data.split(
    files,
    (f) => (data.opts.edgeValues && i === 0 && f === 1 ? undefined : batchFilePath(data, i, f)),
    (f) => isBadBatchFile(data, i, f),
  );
}

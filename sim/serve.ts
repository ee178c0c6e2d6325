// What a resource module (./resources/*) gets from the server and hands back, and the paging helpers the
// list endpoints share.
import type { AuditFilter, EndlessMode, ExpectedList, FileEntry, RunFilter, SimData } from './data.ts';
import { HttpError, intParam } from './http.ts';
import { expectedBatchFiles } from './resources/batch_files.data.ts';

/** What every handler may read: the data and the pagination mode, which a test may change at any time. */
export interface SimContext {
  data: SimData;
  endless(): EndlessMode;
}

export interface RouteRequest {
  /** Path parameters as they came, still percent-encoded: a handler decodes them in the order it needs them. */
  params: Readonly<Record<string, string>>;
  /** The segments a trailing `**` matched, percent-encoded. */
  rest: readonly string[];
  query: URLSearchParams;
  body: string;
  /** The virtual time of the request. */
  now: number;
}

export type Reply =
  | { kind: 'json'; status: number; body: unknown }
  | { kind: 'head'; status: number; headers: Record<string, string> };

/** A reply, or undefined when the path names nothing this route serves (a 404 "no route"). */
export type Handler = (ctx: SimContext, req: RouteRequest) => Reply | undefined;

export interface Route {
  method: 'GET' | 'HEAD' | 'POST';
  /**
   * `/v2/batches/{batch_id}/files`: literal segments and `{params}`, compared with the empty segments of
   * the request path dropped; a trailing `**` takes one or more further segments and is tried only when
   * no route without one matches.
   */
  path: string;
  /** Match the request path character for character instead (no empty segments dropped). */
  exact?: boolean;
  handle: Handler;
}

/** Ground truth at the current virtual time: what a clean walk yields. */
export interface Expected {
  batches(filter?: { workspace?: string; username?: string }): ExpectedList<number | bigint>;
  /** Full paths of a batch's files (`withoutId` counts the edge-value node served without one). */
  batchFiles(batchId: string): ExpectedList<string>;
  /** Run ids (`withoutId` counts the edge-value run served without one). */
  runs(filter?: RunFilter): ExpectedList<string>;
  runResults(runId: string): ExpectedList<number>;
  conversations(): ExpectedList<string>;
  /** Document ids (`withoutId` counts the edge-value document served without one). */
  conversationDocuments(conversationId: string): ExpectedList<number | bigint>;
  documentMetadataValid(conversationId: string, documentId: number | bigint): boolean | undefined;
  queryIds(): string[];
  query(queryId: string): { status: string; valid: boolean } | undefined;
  files(): FileEntry[];
  auditLogs(filter?: AuditFilter): ExpectedList<number> & { invalidCount: number };
}

/** The ground truth of `data` at the virtual time `now()` tells. */
export const expectedAt = (data: SimData, now: () => number): Expected => ({
  batches: (f) => data.expectedBatches(now(), f),
  batchFiles: (id) => expectedBatchFiles(data, id, now()),
  runs: (f) => data.expectedRuns(now(), f),
  runResults: (id) => data.expectedRunResults(id, now()),
  conversations: () => data.expectedConversations(),
  conversationDocuments: (id) => data.expectedConversationDocuments(id),
  documentMetadataValid: (cid, did) => data.expectedDocumentMetadataValid(cid, did),
  queryIds: () => data.queryIds(),
  query: (id) => data.expectedQuery(id, now()),
  files: () => data.expectedFiles(),
  auditLogs: (f) => data.expectedAuditLogs(now(), f),
});

/**
 * One resource of the simulator: the routes that serve it, and its ground truth as
 * `GET /__sim/expected/<resource>` answers it (query parameters parsed as its API route parses them).
 */
export interface SimResource {
  routes: Route[];
  groundTruth?: (expected: Expected, q: URLSearchParams) => unknown;
}

export const json = (body: unknown): Reply => ({ kind: 'json', status: 200, body });

/** A list body; with edge values an empty list is left out, as the spec allows (every list is optional). */
export const list = (ctx: SimContext, key: string, items: unknown[]): Record<string, unknown> =>
  ctx.data.opts.edgeValues && items.length === 0 ? {} : { [key]: items };

export function pageSize(ctx: SimContext, asked: number | undefined): number {
  const scale = ctx.data.opts.scale;
  const size = asked ?? scale.defaultPageSize;
  if (size < 0) throw new HttpError(400, 'page size must not be negative');
  // An endless server still renders one page at a time: a huge limit must not make it build one.
  const cap = ctx.endless() === 'infinite' ? Math.max(1, scale.maxPageSize || 1000) : scale.maxPageSize;
  return cap > 0 ? Math.min(size, cap) : size;
}

export function paging(ctx: SimContext, q: URLSearchParams, offsetName: string, limitName: string) {
  const offset = intParam(q, offsetName) ?? 0;
  if (offset < 0) throw new HttpError(400, `${offsetName} must not be negative`);
  return { offset, limit: pageSize(ctx, intParam(q, limitName)) };
}

/** The query parameter as a string, undefined when absent (the ground-truth filters). */
export const str = (q: URLSearchParams, name: string): string | undefined => q.get(name) ?? undefined;

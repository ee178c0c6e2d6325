// What a resource module (./resources/*) gets from the server and hands back, and the paging helpers the
// list endpoints share.
import type { ResourceName } from '../core/resources.ts';
import type { AuditFilter, EndlessMode, ExpectedList, FileEntry, RunFilter, SimData } from './data.ts';
import { HttpError, intParam } from './http.ts';

/**
 * What every handler may read: the data, the pagination mode, which a test may change at any time, and
 * every resource module (./modules.ts SIM_RESOURCES), for what one serves of another's.
 */
export interface SimContext {
  data: SimData;
  endless(): EndlessMode;
  resources: Readonly<Record<ResourceName, SimResource>>;
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

/** The ground truth of SimData's own world at the current virtual time: what a clean walk yields. */
export interface DataExpected {
  batches(filter?: { workspace?: string; username?: string }): ExpectedList<number | bigint>;
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

/**
 * Ground truth at the current virtual time: SimData's, and that of the resource modules that compute
 * data of their own (SimResource.expected), each module adding its own to this interface
 * (`declare module '../serve.ts'`). What `sim.expected` offers tests.
 */
export interface Expected extends DataExpected {}

/** The ground truth of `data`'s own world at the virtual time `now()` tells. */
export const dataExpectedAt = (data: SimData, now: () => number): DataExpected => ({
  batches: (f) => data.expectedBatches(now(), f),
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
  /**
   * Scale knobs of its own, by name: each is a field of SimScale (the module adds it with
   * `interface SimScale extends ScaleOf<typeof scale> {}`) and the CLI flag `--<name in kebab-case>`.
   */
  scale?: Readonly<Record<string, ScaleKnob>>;
  /**
   * Ground truth of data it computes itself, added to `sim.expected` (the module adds it with
   * `interface Expected extends ReturnType<typeof expected> {}`).
   */
  expected?: (data: SimData, now: () => number) => object;
  /** The tag its own data is drawn with, for hash/u01/pick (./data.ts DATA_HASH_TAGS): unique. */
  hashTag?: number;
  /** Headers of a file of its own that HEAD /v2/files/{path} serves; undefined when `path` names none. */
  headFile?: (data: SimData, path: string, now: number) => Record<string, string> | undefined;
}

/** A scale knob of a resource module: a non-negative integer. */
export interface ScaleKnob {
  default: number;
  /** The CLI flag's help. */
  description: string;
}

/** The SimScale fields a module's scale knobs add. */
export type ScaleOf<Knobs extends Readonly<Record<string, ScaleKnob>>> = { [K in keyof Knobs]: number };

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

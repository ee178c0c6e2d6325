import { createHash } from 'node:crypto';
import type { ApiResponse, InstabaseClient, QueryParams } from './client.ts';
import { headerValue } from './client.ts';
import { InstabasePagingError, InstabaseSchemaError, type SchemaIssue } from './errors.ts';
import { stringifyJson } from './json.ts';
import type { PaginatorKind, ResourceSpec } from './resource.ts';
import { parseHeaderDate } from './rfc3339.ts';
import { toIssues, type FileMetadata } from './schemas.ts';

export interface ValidRecord<R> {
  ok: true;
  /** Position of the record in the whole listing (page offset + index in page). */
  index: number;
  record: R;
}

/** A record that broke its schema: kept whole so the producer can dead-letter it. */
export interface InvalidRecord {
  ok: false;
  index: number;
  raw: unknown;
  /** The record as JSON, int64 values exact. Semantically the bytes received, not byte for byte. */
  rawJson: string;
  issues: SchemaIssue[];
}

export type RecordItem<R> = ValidRecord<R> | InvalidRecord;

export interface PagePosition {
  kind: PaginatorKind;
  /** offset, file_offset or start of the page; 0 for unpaged endpoints; records before it for token paging. */
  offset: number;
  /** token paging: the token that asks for this page (none for the first). */
  token?: string;
}

export interface Page<R> {
  resource: string;
  /** "GET /v2/batches": method and path template. */
  endpoint: string;
  requestPath: string;
  pathParams: Readonly<Record<string, string | number | bigint>>;
  /** 0-based number of this page in the walk. */
  pageIndex: number;
  position: PagePosition;
  /** Where to resume after this page has been published; undefined once the walk is complete. */
  next: PagePosition | undefined;
  last: boolean;
  /** Every record of the page in order, valid or not. */
  items: RecordItem<R>[];
  records: R[];
  invalid: InvalidRecord[];
  /** The rest of the body (e.g. the run fields of a results page, the conversation of its documents). */
  meta: Record<string, unknown> | undefined;
  /** HTTP attempts this page took (1 = no retry). */
  attempts: number;
}

export interface WalkParams {
  pathParams?: Readonly<Record<string, string | number | bigint>>;
  query?: QueryParams;
  /** Extra JSON body fields (body_offset paging: the filters). */
  body?: Readonly<Record<string, unknown>>;
  /** Resume from a checkpointed `next.offset`. */
  startOffset?: number;
  /** token paging: resume from a checkpointed `next.token` (with `startOffset`, the records before it). */
  startToken?: string;
  /** Override the declared page size. */
  pageSize?: number;
  /** Override the client's maxPagesPerWalk. */
  maxPages?: number;
  signal?: AbortSignal;
}

export interface WalkSummary {
  pages: number;
  records: number;
  invalid: number;
  /** The offset a later walk would start from to see only newer records. */
  endOffset: number;
}

/** Where a walk stands: records before the page, and for token paging the token that asks for it. */
interface Cursor {
  offset: number;
  token?: string;
}

/** What a paginator decides after a page: the last page, no progress (with why), or the next cursor. */
type NextPage = { last: true } | { last: false; next: Cursor } | { last: false; stuck: string };

/**
 * One paging scheme, as dlt's paginators are: how a cursor goes into the request, and what comes after
 * a page. `walk` is the same loop for every kind.
 */
interface Paginator {
  /** Where a walk starts; unpaged kinds always start at the beginning. */
  start(params: WalkParams): Cursor;
  /** Writes the cursor (and page size) into the query or body of the request. */
  apply(
    cursor: Cursor,
    pageSize: number,
    req: { query: QueryParams; body: Record<string, unknown> | undefined },
  ): void;
  /** After a page of `count` records whose envelope is `meta`. */
  next(cursor: Cursor, count: number, meta: Record<string, unknown> | undefined): NextPage;
}

const afterOffsetPage = (cursor: Cursor, count: number, last: boolean): NextPage =>
  last
    ? { last: true }
    : count === 0
      ? { last: false, stuck: 'the server says there is more but sent an empty page' }
      : { last: false, next: { offset: cursor.offset + count } };

function paginatorOf(spec: ResourceSpec<unknown>): Paginator {
  const p = spec.paginator;
  switch (p.kind) {
    case 'offset':
      return {
        start: (params) => ({ offset: params.startOffset ?? 0 }),
        apply(cursor, pageSize, req) {
          req.query[p.limitParam] = pageSize;
          req.query[p.offsetParam] = cursor.offset;
        },
        // Only an empty page ends an offset walk. A short page does not: servers cap page sizes below the
        // limit asked for, and taking their first page for the last would lose the rest silently.
        next: (cursor, count) => afterOffsetPage(cursor, count, count === 0),
      };
    case 'body_offset':
      return {
        start: (params) => ({ offset: params.startOffset ?? 0 }),
        apply(cursor, pageSize, req) {
          req.body = { ...req.body, [p.startField]: cursor.offset, [p.sizeField]: pageSize };
        },
        next: (cursor, count) => afterOffsetPage(cursor, count, count === 0),
      };
    case 'has_more':
      return {
        start: (params) => ({ offset: params.startOffset ?? 0 }),
        apply(cursor, _pageSize, req) {
          req.query[p.offsetParam] = cursor.offset;
        },
        next: (cursor, count, meta) => afterOffsetPage(cursor, count, meta?.[p.hasMoreField] !== true),
      };
    case 'token':
      return {
        start: (params) => ({ offset: params.startOffset ?? 0, token: params.startToken }),
        apply(cursor, pageSize, req) {
          req.query[p.sizeParam] = pageSize;
          if (cursor.token !== undefined) req.query[p.tokenParam] = cursor.token;
        },
        next(cursor, count, meta) {
          if (meta?.[p.hasMoreField] !== true) return { last: true };
          const token = meta[p.nextTokenField];
          // The token is the progress: an empty page with a fresh token is a page of a sparse listing,
          // while no token, or the one just sent, would ask for the same page again.
          if (typeof token !== 'string' || token === '')
            return { last: false, stuck: `the server says there is more but sent no ${p.nextTokenField}` };
          if (token === cursor.token)
            return { last: false, stuck: `the server sent back the ${p.tokenParam} it was given` };
          return { last: false, next: { offset: cursor.offset + count, token } };
        },
      };
    case 'single':
    case 'none':
      return {
        start: () => ({ offset: 0 }),
        apply() {},
        next: () => ({ last: true }),
      };
  }
}

/**
 * Walks one endpoint to the end, one page per yield. A page is yielded only after it was read whole, so a
 * producer that publishes it and then checkpoints `page.next` never loses or repeats a page. Throws
 * InstabasePagingError instead of looping when the server keeps paging without progress.
 */
export async function* walk<R>(
  client: InstabaseClient,
  spec: ResourceSpec<R>,
  params: WalkParams = {},
): AsyncGenerator<Page<R>, WalkSummary, void> {
  const p = spec.paginator;
  const paginator = paginatorOf(spec as ResourceSpec<unknown>);
  const endpoint = `${spec.method} ${spec.path}`;
  const maxPages = params.maxPages ?? client.options.maxPagesPerWalk;
  const pathParams = params.pathParams ?? {};
  const pageSize = 'pageSize' in p ? (params.pageSize ?? p.pageSize) : 0;
  const seenPages = new Set<string>();
  let cursor = paginator.start(params);
  const summary: WalkSummary = { pages: 0, records: 0, invalid: 0, endOffset: cursor.offset };

  for (let pageIndex = 0; ; pageIndex++) {
    if (pageIndex >= maxPages) {
      throw new InstabasePagingError(
        { endpoint },
        'page_cap',
        cursor.offset,
        pageIndex,
        `walk needs more than maxPagesPerWalk=${maxPages} pages`,
      );
    }
    const req: { query: QueryParams; body: Record<string, unknown> | undefined } = {
      query: { ...spec.defaultQuery, ...params.query },
      body: spec.method === 'POST' ? { ...spec.defaultBody, ...params.body } : undefined,
    };
    paginator.apply(cursor, pageSize, req);

    const res = await client.request({
      method: spec.method,
      path: spec.path,
      pathParams,
      multiSegmentParams: spec.multiSegmentParams,
      query: req.query,
      body: req.body,
      acceptStatuses: spec.method === 'HEAD' ? [404] : undefined,
      signal: params.signal,
    });

    const { items, meta, rawRecords } =
      spec.method === 'HEAD' ? headItems(spec, res, pathParams) : extractItems(spec, res, cursor.offset);
    const count = items.length;
    const after = paginator.next(cursor, count, meta);
    const errCtx = { endpoint, requestPath: res.requestPath, status: res.status, body: res.text };
    if ('stuck' in after) {
      throw new InstabasePagingError(errCtx, 'no_progress', cursor.offset, pageIndex + 1, after.stuck);
    }
    if (!after.last && count > 0) {
      const fingerprint = createHash('sha1').update(stringifyJson(rawRecords)).digest('base64');
      if (seenPages.has(fingerprint)) {
        throw new InstabasePagingError(
          errCtx,
          'repeated_page',
          cursor.offset,
          pageIndex + 1,
          'the server sent a page it already sent; it is ignoring the offset',
        );
      }
      seenPages.add(fingerprint);
    }

    const position: PagePosition = { kind: p.kind, offset: cursor.offset, ...tokenOf(cursor) };
    const valid: R[] = [];
    const invalid: InvalidRecord[] = [];
    for (const item of items) {
      if (item.ok) valid.push(item.record);
      else invalid.push(item);
    }
    summary.pages++;
    summary.records += valid.length;
    summary.invalid += invalid.length;
    summary.endOffset = p.kind === 'single' || p.kind === 'none' ? 0 : cursor.offset + count;
    yield {
      resource: spec.name,
      endpoint,
      requestPath: res.requestPath,
      pathParams,
      pageIndex,
      position,
      next: after.last ? undefined : { kind: p.kind, offset: after.next.offset, ...tokenOf(after.next) },
      last: after.last,
      items,
      records: valid,
      invalid,
      meta,
      attempts: res.attempts,
    };
    if (after.last) return summary;
    cursor = after.next;
  }
}

/** The token of a cursor as an optional field (absent, not undefined, when there is none). */
const tokenOf = (cursor: Cursor): { token?: string } =>
  cursor.token === undefined ? {} : { token: cursor.token };

/** Valid records of a walk, for callers that do not checkpoint. Invalid records go to onInvalid. */
export async function* records<R>(
  pages: AsyncGenerator<Page<R>, WalkSummary, void>,
  onInvalid?: (item: InvalidRecord, page: Page<R>) => void,
): AsyncGenerator<R, WalkSummary, void> {
  for (;;) {
    const step = await pages.next();
    if (step.done) return step.value;
    for (const item of step.value.items) {
      if (item.ok) yield item.record;
      else onInvalid?.(item, step.value);
    }
  }
}

export interface PollOptions<R> {
  intervalMs: number;
  maxPolls: number;
  /** Defaults to the spec's `terminal` declaration. */
  isTerminal?: (record: R) => boolean;
  signal?: AbortSignal;
}

/**
 * Polls a single-object endpoint (queries_status) until the record is terminal, yielding every
 * observation. An invalid record ends the poll too: waiting would not make it valid.
 */
export async function* poll<R>(
  client: InstabaseClient,
  spec: ResourceSpec<R>,
  params: WalkParams,
  opts: PollOptions<R>,
): AsyncGenerator<Page<R>, Page<R>, void> {
  const terminal = spec.terminal;
  const isTerminal =
    opts.isTerminal ??
    ((r: R) =>
      terminal !== undefined &&
      terminal.values.includes(String((r as Record<string, unknown>)[terminal.field])));
  for (let n = 1; ; n++) {
    const gen = walk(client, spec, { ...params, signal: opts.signal ?? params.signal });
    const step = await gen.next();
    if (step.done) throw new Error(`${spec.name}: a single-object walk yielded no page`);
    const page = step.value;
    yield page;
    const item = page.items[0];
    if (!item || !item.ok || isTerminal(item.record)) return page;
    if (n >= opts.maxPolls) {
      throw new InstabasePagingError(
        { endpoint: page.endpoint, requestPath: page.requestPath },
        'poll_cap',
        0,
        n,
        `still not terminal after ${n} polls`,
      );
    }
    await client.options.sleep(opts.intervalMs, opts.signal);
  }
}

function extractItems<R>(
  spec: ResourceSpec<R>,
  res: ApiResponse,
  offset: number,
): { items: RecordItem<R>[]; meta: Record<string, unknown> | undefined; rawRecords: unknown[] } {
  const errCtx = { endpoint: res.endpoint, requestPath: res.requestPath, status: res.status, body: res.text };
  const body = res.body;
  if (!isObject(body)) {
    throw new InstabaseSchemaError(errCtx, [
      { path: [], code: 'invalid_type', message: `expected a JSON object, got ${describe(body)}` },
    ]);
  }
  const selector = spec.dataSelector ? spec.dataSelector.split('.') : [];
  if (spec.paginator.kind === 'single') {
    const raw = selector.length ? select(body, selector) : body;
    const meta = selector.length ? without(body, selector) : undefined;
    if (meta) checkEnvelope(spec, meta, errCtx);
    return { items: [validate(spec, raw, 0)], meta, rawRecords: [raw] };
  }
  const selected = select(body, selector);
  const status = spec.absentListStatus;
  if (selected === undefined && status && body[status.field] !== undefined) {
    const value = body[status.field];
    if (typeof value !== 'string' || !status.values.includes(value.toUpperCase())) {
      throw new InstabaseSchemaError(errCtx, [
        {
          path: selector,
          code: 'missing',
          message: `no record list, and ${status.field} is ${JSON.stringify(value)}, not ${status.values.join(' or ')}: an error answered as 200`,
        },
      ]);
    }
  }
  const list = selected === undefined && spec.dataOptional ? [] : selected;
  if (!Array.isArray(list)) {
    throw new InstabaseSchemaError(errCtx, [
      {
        path: selector,
        code: list === undefined ? 'missing' : 'invalid_type',
        message: `expected the record list at ${spec.dataSelector}, got ${describe(list)}`,
      },
    ]);
  }
  const meta = without(body, selector);
  checkEnvelope(spec, meta, errCtx);
  return { items: list.map((raw, i) => validate(spec, raw, offset + i)), meta, rawRecords: list };
}

function checkEnvelope(
  spec: ResourceSpec,
  meta: Record<string, unknown>,
  errCtx: ConstructorParameters<typeof InstabaseSchemaError>[0],
): void {
  if (!spec.envelope) return;
  const r = spec.envelope.safeParse(meta);
  if (!r.success) throw new InstabaseSchemaError(errCtx, toIssues(r.error));
}

function validate<R>(spec: ResourceSpec<R>, raw: unknown, index: number): RecordItem<R> {
  const r = spec.record.safeParse(raw);
  if (r.success) return { ok: true, index, record: r.data };
  return { ok: false, index, raw, rawJson: stringifyJson(raw), issues: toIssues(r.error) };
}

/** files_metadata: one record from the headers of a HEAD; a 404 is a record too (the path is absent). */
function headItems<R>(
  spec: ResourceSpec<R>,
  res: ApiResponse,
  pathParams: Readonly<Record<string, string | number | bigint>>,
): { items: RecordItem<R>[]; meta: undefined; rawRecords: unknown[] } {
  const path = String(pathParams.path ?? '');
  const raw = fileMetadataFromHeaders(path, res.status, res.headers);
  const issues: SchemaIssue[] = [];
  if (raw.exists && raw.type === null) {
    issues.push({
      path: ['content-type'],
      code: 'invalid_value',
      message: `expected application/json (folder) or application/octet-stream (file), got ${raw.content_type ?? 'none'}`,
    });
  }
  if (raw.content_length_raw !== null && raw.content_length === null) {
    issues.push({
      path: ['content-length'],
      code: 'invalid_type',
      message: `not an integer: ${raw.content_length_raw}`,
    });
  }
  if (raw.last_modified !== null && raw.last_modified_ms === null) {
    issues.push({
      path: ['last-modified'],
      code: 'invalid_format',
      message: `neither an RFC 3339 date-time nor an HTTP-date: ${raw.last_modified}`,
    });
  }
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { content_length_raw, ...record } = raw;
  if (issues.length) {
    return {
      items: [{ ok: false, index: 0, raw: record, rawJson: stringifyJson(record), issues }],
      meta: undefined,
      rawRecords: [record],
    };
  }
  return { items: [validate(spec, record, 0)], meta: undefined, rawRecords: [record] };
}

export function fileMetadataFromHeaders(
  path: string,
  status: number,
  headers: ApiResponse['headers'],
): FileMetadata & { content_length_raw: string | null } {
  if (status === 404) {
    return {
      path,
      exists: false,
      type: null,
      content_type: null,
      content_length: null,
      content_length_raw: null,
      last_modified: null,
      last_modified_ms: null,
    };
  }
  const contentType = headerValue(headers['content-type']) ?? null;
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  const type =
    mediaType === 'application/json' ? 'folder' : mediaType === 'application/octet-stream' ? 'file' : null;
  const lengthRaw = headerValue(headers['content-length'])?.trim() ?? null;
  let length: number | bigint | null = null;
  if (lengthRaw !== null && /^\d+$/.test(lengthRaw)) {
    const n = Number(lengthRaw);
    length = Number.isSafeInteger(n) ? n : BigInt(lengthRaw);
  }
  const lastModified = headerValue(headers['last-modified']) ?? null;
  const ms = lastModified === null ? null : parseHeaderDate(lastModified);
  return {
    path,
    exists: true,
    type,
    content_type: contentType,
    // A folder's Content-Length (if any) describes the empty HEAD body, not a file size.
    content_length: type === 'folder' ? null : length,
    content_length_raw: type === 'folder' ? null : lengthRaw,
    last_modified: lastModified,
    last_modified_ms: ms,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function select(body: Record<string, unknown>, path: readonly string[]): unknown {
  let cur: unknown = body;
  for (const key of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** A copy of body without the value at path (copying only the objects along the path). */
function without(body: Record<string, unknown>, path: readonly string[]): Record<string, unknown> {
  if (path.length === 0) return {};
  const [head, ...rest] = path as [string, ...string[]];
  const copy = { ...body };
  if (rest.length === 0) delete copy[head];
  else if (isObject(copy[head])) copy[head] = without(copy[head], rest);
  return copy;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'undefined' ? 'nothing' : typeof v;
}

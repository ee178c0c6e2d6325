import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createLogger, type Logger } from '../core/log.ts';
import {
  DEFAULT_GROWTH,
  DEFAULT_SCALE,
  DEFAULT_START_TIME,
  SimData,
  type AuditFilter,
  type EndlessMode,
  type ExpectedList,
  type FileEntry,
  type ResultsOptions,
  type RunFilter,
  type SimGrowth,
  type SimScale,
} from './data.ts';
import { FaultInjector, type Fault, type FaultKind, type FaultOptions } from './faults.ts';
import { toJson } from './json.ts';

export interface SimulatorOptions {
  host?: string;
  /** 8700 by convention; 0 picks a free port. */
  port?: number;
  /** The only Bearer token accepted. */
  token?: string;
  /** When set, requests must carry this IB-Context or get 403. */
  context?: string;
  seed?: string | number;
  /** Virtual epoch ms at start; defaults to 2026-01-10T00:00:00Z so data is reproducible. */
  startTime?: number;
  scale?: Partial<SimScale>;
  growth?: Partial<SimGrowth>;
  faults?: Partial<FaultOptions>;
  /** Probability that a record is served breaking its schema (fixed per record by the seed). */
  badRecords?: number;
  edgeValues?: boolean;
  /** Misbehaving pagination, to prove the client cannot loop forever. */
  endless?: EndlessMode;
  /** Advance the virtual clock every tickMs of real time (0 = frozen unless advance() is called). */
  tickMs?: number;
  /** Virtual ms per real ms while ticking. */
  speed?: number;
  logger?: Logger;
}

export interface SimStats {
  requests: number;
  byStatus: Record<string, number>;
  faults: Record<FaultKind, number>;
}

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

export interface Simulator {
  /** Base URL to give the client, e.g. http://127.0.0.1:8700/api. */
  url: string;
  origin: string;
  port: number;
  token: string;
  data: SimData;
  /** Ground truth at the current virtual time: what a clean walk yields. */
  expected: Expected;
  now(): number;
  /** Moves the virtual clock forward: batches and audit entries appear, runs and queries finish. */
  advance(ms: number): void;
  setFaults(faults: Partial<FaultOptions>): void;
  setEndless(mode: EndlessMode): void;
  stats(): SimStats;
  close(): Promise<void>;
}

export const DEFAULT_SIM_PORT = 8700;
export const DEFAULT_SIM_TOKEN = 'sim-token';
const API_PREFIX = '/api';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The one method the simulator serves on a path (RFC 9110 wants it in the Allow header of a 405). */
function allowedMethod(path: string): string {
  if (path.startsWith('/v2/files/')) return 'HEAD';
  if (path === '/v1/auditlogs') return 'POST';
  return 'GET';
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? DEFAULT_SIM_TOKEN;
  const log = opts.logger ?? createLogger('instabase-sim');
  const data = new SimData({
    seed: opts.seed ?? 1,
    startTime: opts.startTime ?? DEFAULT_START_TIME,
    scale: { ...DEFAULT_SCALE, ...opts.scale },
    growth: { ...DEFAULT_GROWTH, ...opts.growth },
    badRecords: opts.badRecords ?? 0,
    edgeValues: opts.edgeValues ?? false,
  });
  const faults = new FaultInjector(data.seed, opts.faults);
  let endless: EndlessMode = opts.endless ?? 'off';
  let offsetMs = 0;
  const now = () => data.opts.startTime + offsetMs;
  const stats: SimStats = { requests: 0, byStatus: {}, faults: faults.injected };
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const method = req.method ?? 'GET';
    const body = method === 'POST' ? await readBody(req) : '';
    if (url.pathname.startsWith('/__sim/')) {
      control(url, method, body, res);
      return;
    }
    stats.requests++;
    if (!url.pathname.startsWith(`${API_PREFIX}/`)) throw new HttpError(404, `no such path: ${url.pathname}`);
    if (req.headers.authorization !== `Bearer ${token}`) {
      throw new HttpError(401, 'Unauthorized: the API token is missing or invalid');
    }
    if (opts.context !== undefined && req.headers['ib-context'] !== opts.context) {
      throw new HttpError(403, 'Forbidden: this token has no access to the requested IB-Context');
    }
    const fault = faults.decide(`${method} ${url.pathname}${url.search} ${body}`, method === 'HEAD');
    if (fault?.kind === 'slow') await delay(faults.options.slowMs);
    if (fault && fault.kind !== 'slow' && applyEarlyFault(fault, res, req.socket)) return;
    const out = route(method, url.pathname.slice(API_PREFIX.length), url.searchParams, body);
    if (out.kind === 'head') {
      res.writeHead(out.status, out.headers);
      res.end();
      count(out.status);
      return;
    }
    sendJson(res, out.status, out.body, fault);
    count(out.status);
  };

  const route = (
    method: string,
    path: string,
    q: URLSearchParams,
    body: string,
  ):
    | { kind: 'json'; status: number; body: unknown }
    | { kind: 'head'; status: number; headers: Record<string, string> } => {
    const seg = path.split('/').filter(Boolean);
    const json = (b: unknown) => ({ kind: 'json' as const, status: 200, body: b });
    const t = now();
    if (method === 'HEAD' && seg[0] === 'v2' && seg[1] === 'files' && seg.length > 2) {
      const filePath = seg.slice(2).map(decodeSegment).join('/');
      const i = data.fileIndex(filePath);
      const batchFile = i === undefined ? data.batchFileAt(filePath, t) : undefined;
      const headers =
        i !== undefined
          ? data.fileHeaders(i)
          : batchFile && data.batchFileHeaders(batchFile.i, batchFile.f, t);
      return headers ? { kind: 'head', status: 200, headers } : { kind: 'head', status: 404, headers: {} };
    }
    if (method === 'GET' && seg[0] === 'v2') {
      if (seg[1] === 'batches' && seg.length === 2) {
        const { offset, limit } = paging(q, 'offset', 'limit');
        if (endless === 'infinite')
          return json(
            list(
              'batches',
              range(offset, limit).map((i) => data.batch(i, t)),
            ),
          );
        const filter = {
          workspace: q.get('workspace') ?? undefined,
          username: q.get('username') ?? undefined,
        };
        const idx = data.batchIndexes(t, filter, endless === 'repeat' ? 0 : offset, limit);
        return json(
          list(
            'batches',
            idx.map((i) => data.batch(i, t)),
          ),
        );
      }
      if (seg[1] === 'batches' && seg.length === 4 && seg[3] === 'files') {
        const i = data.batchIndexOf(decodeSegment(seg[2] ?? ''), t);
        if (i === undefined) throw new HttpError(404, 'Batch does not exist, or denied access');
        return json(batchFilesPage(i, q, t));
      }
      if (seg[1] === 'apps' && seg[2] === 'runs') {
        if (seg.length === 3) {
          const { offset, limit } = paging(q, 'offset', 'limit');
          const idx = data.runIndexes(t, runFilter(q));
          const from = endless === 'repeat' ? 0 : offset;
          return json(
            list(
              'runs',
              idx.slice(from, from + limit).map((j) => data.run(j, t)),
            ),
          );
        }
        const j = data.runIndex(decodeSegment(seg[3] ?? ''), t);
        if (j === undefined) throw new HttpError(404, 'Run not found');
        if (seg.length === 4) return json(data.run(j, t));
        if (seg.length === 5 && seg[4] === 'results') {
          const o: ResultsOptions = {
            fileOffset: intParam(q, 'file_offset') ?? 0,
            reviewResults: boolParam(q, 'include_review_results'),
            confidenceScores: boolParam(q, 'include_confidence_scores'),
            validationResults: boolParam(q, 'include_validation_results'),
            sourceInfo: boolParam(q, 'include_source_info'),
          };
          if (o.fileOffset < 0) throw new HttpError(400, 'file_offset must not be negative');
          return json(data.results(j, t, o, endless));
        }
      }
      if (seg[1] === 'conversations') {
        if (seg.length === 2) {
          return json(
            list(
              'conversations',
              Array.from({ length: data.opts.scale.conversations }, (_, c) => data.conversationSummary(c)),
            ),
          );
        }
        const c = data.conversationIndex(decodeSegment(seg[2] ?? ''));
        if (c === undefined) throw new HttpError(404, 'Conversation not found');
        if (seg.length === 3) return json(data.conversation(c));
        if (seg.length === 5 && seg[3] === 'documents') {
          // Ids may be past 2^53: compared as text, never through a double.
          const docId = decodeSegment(seg[4] ?? '');
          const meta = /^\d+$/.test(docId) ? data.documentMetadata(c, docId) : undefined;
          if (!meta) throw new HttpError(404, 'Document not found');
          return json(meta);
        }
      }
      if (seg[1] === 'queries' && seg.length === 3) {
        const k = data.queryIndex(decodeSegment(seg[2] ?? ''));
        if (k === undefined) throw new HttpError(404, 'Invalid query uuid passed');
        return json(data.query(k, t));
      }
    }
    if (method === 'POST' && path === '/v1/auditlogs') {
      const req = parseAuditRequest(body);
      const size = pageSize(req.size ?? undefined);
      const start = req.start ?? 0;
      const sel = data.auditSelection(t, req);
      const from = endless === 'repeat' ? 0 : start;
      const results: unknown[] = [];
      const end = endless === 'infinite' ? from + size : Math.min(sel.count, from + size);
      for (let k = from; k < end; k++) results.push(data.auditEntry(sel.nth(k)));
      // `data` and `data.results` are optional: with edge values an empty page leaves one of them out.
      if (data.opts.edgeValues && results.length === 0)
        return json(start % 2 === 0 ? { status: 'OK', data: {} } : { status: 'OK' });
      return json({ status: 'OK', data: { results } });
    }
    if (method === 'GET' || method === 'POST' || method === 'HEAD')
      throw new HttpError(404, `no route for ${method} ${path}`);
    throw new HttpError(405, `no route for ${method} ${path}`, { allow: allowedMethod(path) });
  };

  /**
   * A page of a batch's files. The token is opaque to clients; here it is the position, in base64 JSON
   * as the spec's example. Endless modes: 'repeat' ignores the token, 'empty' hands back empty pages and
   * the token it was given, 'infinite' always has more.
   */
  const batchFilesPage = (i: number, q: URLSearchParams, t: number): Record<string, unknown> => {
    const size = pageSize(intParam(q, 'page_size'));
    const token = q.get('start_token');
    let from = 0;
    if (token !== null) {
      const decoded = decodeToken(token);
      if (decoded === undefined)
        throw new HttpError(400, 'start_token is not a token this server handed out');
      from = decoded;
    }
    if (endless === 'empty') return { nodes: [], has_more: true, next_page_token: token ?? encodeToken(0) };
    if (endless === 'repeat') from = 0;
    const total = endless === 'infinite' ? Infinity : data.batchFileCount(i, t);
    const end = Math.min(total, from + Math.max(1, size));
    const nodes: unknown[] = [];
    for (let f = from; f < end; f++) nodes.push(data.batchFile(i, f, t));
    const body: Record<string, unknown> = { ...list('nodes', nodes), has_more: end < total };
    if (end < total) body.next_page_token = encodeToken(end);
    return body;
  };

  /** A list body; with edge values an empty list is left out, as the spec allows (every list is optional). */
  const list = (key: string, items: unknown[]): Record<string, unknown> =>
    data.opts.edgeValues && items.length === 0 ? {} : { [key]: items };

  const pageSize = (asked: number | undefined): number => {
    const size = asked ?? data.opts.scale.defaultPageSize;
    if (size < 0) throw new HttpError(400, 'page size must not be negative');
    // An endless server still renders one page at a time: a huge limit must not make it build one.
    const cap =
      endless === 'infinite' ? Math.max(1, data.opts.scale.maxPageSize || 1000) : data.opts.scale.maxPageSize;
    return cap > 0 ? Math.min(size, cap) : size;
  };

  const paging = (q: URLSearchParams, offsetName: string, limitName: string) => {
    const offset = intParam(q, offsetName) ?? 0;
    if (offset < 0) throw new HttpError(400, `${offsetName} must not be negative`);
    return { offset, limit: pageSize(intParam(q, limitName)) };
  };

  const count = (status: number) => {
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  };

  const applyEarlyFault = (fault: Fault, res: ServerResponse, socket: Socket): boolean => {
    switch (fault.kind) {
      case '429': {
        const s = faults.options.retryAfterS;
        const retryAfter = fault.variant < 0.5 ? String(s) : new Date(Date.now() + s * 1000).toUTCString();
        writeJson(res, 429, { message: 'Too many requests' }, { 'retry-after': retryAfter });
        count(429);
        return true;
      }
      case '500':
        writeJson(res, 500, { message: 'Internal server error' });
        count(500);
        return true;
      case '503':
        writeJson(res, 503, { message: 'Service temporarily unavailable' });
        count(503);
        return true;
      case 'reset':
        if (fault.variant < 0.5) {
          socket.destroy();
          return true;
        }
        return false;
      default:
        return false;
    }
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, fault: Fault | undefined) => {
    const text = toJson(body);
    if (fault?.kind === 'truncate') {
      const cut = text.slice(0, Math.max(1, Math.floor(text.length * (0.1 + 0.8 * fault.variant))));
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(cut) });
      res.end(cut);
      return;
    }
    if (fault?.kind === 'malformed') {
      const junk =
        fault.variant < 0.5
          ? '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>'
          : `${text.slice(0, 40)}\u0000NaN}{`;
      const type = fault.variant < 0.5 ? 'text/html' : 'application/json';
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(junk) });
      res.end(junk);
      return;
    }
    if (fault?.kind === 'reset') {
      // Headers promise the whole body, then the connection dies half way.
      const buf = Buffer.from(text);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length });
      res.write(buf.subarray(0, Math.floor(buf.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const control = (url: URL, method: string, body: string, res: ServerResponse) => {
    const q = url.searchParams;
    const path = url.pathname;
    if (path === '/__sim/state' && method === 'GET') {
      writeJson(res, 200, {
        now: now(),
        nowIso: new Date(now()).toISOString(),
        seed: data.opts.seed,
        endless,
        counts: {
          batches: data.batchCount(now()),
          runs: data.runCount(now()),
          audit_logs: data.auditCount(now()),
          conversations: data.opts.scale.conversations,
          queries: data.opts.scale.queries,
          files: data.opts.scale.files,
        },
        faults: faults.options,
        stats,
      });
      return;
    }
    if (path === '/__sim/advance' && method === 'POST') {
      sim.advance(Number(q.get('ms') ?? 0));
      writeJson(res, 200, { now: now() });
      return;
    }
    if (path === '/__sim/faults' && method === 'POST') {
      sim.setFaults(body ? (JSON.parse(body) as Partial<FaultOptions>) : {});
      writeJson(res, 200, faults.options);
      return;
    }
    if (path.startsWith('/__sim/expected/') && method === 'GET') {
      const what = path.slice('/__sim/expected/'.length);
      const e = sim.expected;
      const str = (k: string) => q.get(k) ?? undefined;
      const result: Record<string, () => unknown> = {
        batches: () => e.batches({ workspace: str('workspace'), username: str('username') }),
        batch_files: () => e.batchFiles(q.get('batch_id') ?? ''),
        // The same filters, parsed the same way, as GET /v2/apps/runs.
        runs: () => e.runs(runFilter(q)),
        runs_results: () => e.runResults(q.get('run_id') ?? ''),
        conversations: () => e.conversations(),
        conversation_documents: () => e.conversationDocuments(q.get('conversation_id') ?? ''),
        queries_status: () => e.queryIds().map((id) => ({ query_id: id, ...e.query(id) })),
        files_metadata: () => e.files(),
        audit_logs: () =>
          e.auditLogs({
            log_type: str('log_type'),
            email: str('email'),
            start_time: str('start_time'),
            end_time: str('end_time'),
          }),
      };
      const fn = result[what];
      if (!fn) throw new HttpError(404, `no ground truth for ${what}`);
      writeJson(res, 200, fn());
      return;
    }
    throw new HttpError(404, `no control route ${method} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (!(err instanceof HttpError)) log.error({ err }, 'simulator handler failed');
      count(status);
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const headers = err instanceof HttpError ? err.headers : {};
      if (req.method === 'HEAD') {
        // No body, but the media type an error would have (the spec documents application/json).
        res.writeHead(status, { ...headers, 'content-type': 'application/json' });
        res.end();
        return;
      }
      writeJson(res, status, { message: err instanceof Error ? err.message : String(err) }, headers);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_SIM_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let ticker: NodeJS.Timeout | undefined;
  if (opts.tickMs && opts.tickMs > 0) {
    const step = opts.tickMs * (opts.speed ?? 1);
    ticker = setInterval(() => (offsetMs += step), opts.tickMs);
    ticker.unref();
  }

  const sim: Simulator = {
    url: `${origin}${API_PREFIX}`,
    origin,
    port,
    token,
    data,
    now,
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error('advance: ms must be a non-negative number');
      offsetMs += ms;
    },
    setFaults: (f) => faults.set(f),
    setEndless: (mode) => {
      endless = mode;
    },
    stats: () => structuredClone(stats),
    expected: {
      batches: (f) => data.expectedBatches(now(), f),
      batchFiles: (id) => data.expectedBatchFiles(id, now()),
      runs: (f) => data.expectedRuns(now(), f),
      runResults: (id) => data.expectedRunResults(id, now()),
      conversations: () => data.expectedConversations(),
      conversationDocuments: (id) => data.expectedConversationDocuments(id),
      documentMetadataValid: (cid, did) => data.expectedDocumentMetadataValid(cid, did),
      queryIds: () => data.queryIds(),
      query: (id) => data.expectedQuery(id, now()),
      files: () => data.expectedFiles(),
      auditLogs: (f) => data.expectedAuditLogs(now(), f),
    },
    async close() {
      if (ticker) clearInterval(ticker);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  return sim;
}

function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = toJson(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

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
  const str = (k: string) => {
    const v = b[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new HttpError(400, `${k} must be a string`);
    return v;
  };
  return {
    start: int('start'),
    size: int('size'),
    log_type: str('log_type'),
    email: str('email'),
    start_time: str('start_time'),
    end_time: str('end_time'),
  };
}

/** The filters of GET /v2/apps/runs (status may be repeated or comma-separated). */
function runFilter(q: URLSearchParams): RunFilter {
  return {
    from_timestamp: intParam(q, 'from_timestamp'),
    to_timestamp: intParam(q, 'to_timestamp'),
    status: q
      .getAll('status')
      .flatMap((s) => s.split(','))
      .filter(Boolean),
    run_id: q.get('run_id') ?? undefined,
    username: q.get('username') ?? undefined,
    sort_by: enumParam(q, 'sort_by', ['start_timestamp', 'status'] as const),
    order: enumParam(q, 'order', ['ASCENDING', 'DESCENDING'] as const),
  };
}

/** A path segment, percent-decoded; a malformed escape (%zz) is the client's error, a 400. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: ${segment}`);
  }
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new HttpError(400, `${name} must be an integer`);
  return Number(v);
}

function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === 'false' || v === 'False' || v === '0') return false;
  if (v === 'true' || v === 'True' || v === '1') return true;
  throw new HttpError(400, `${name} must be true or false`);
}

function enumParam<T extends string>(q: URLSearchParams, name: string, values: readonly T[]): T | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!values.includes(v as T)) throw new HttpError(400, `${name} must be one of ${values.join(', ')}`);
  return v as T;
}

function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => from + k);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

import type { Dispatcher } from 'undici';
import { createLogger, type Logger } from '../../core/log.ts';
import { registerSecret, redactError } from '../../core/secrets.ts';
import {
  InstabaseAuthError,
  InstabaseError,
  InstabaseHttpStatusError,
  InstabaseMalformedBodyError,
  InstabaseNetworkError,
  InstabaseNotFoundError,
  InstabaseTimeoutError,
  isRetryableStatus,
  type ErrorContext,
} from './errors.ts';
import { AttemptTimeoutError, HttpTransport, type HttpMethod, type RawResponse } from './http.ts';
import { JsonSyntaxError, parseJson, stringifyJson } from './json.ts';
import { RateLimiter } from './rate-limit.ts';
import { isRetryableNetworkCode, parseRetryAfter, retryDelay, sleep as realSleep } from './retry.ts';

export interface InstabaseClientOptions {
  /** API root, e.g. https://aihub.instabase.com/api (INSTABASE_API_URL). */
  baseUrl: string;
  /** Bearer token (INSTABASE_API_TOKEN); registered as a secret and never logged. */
  token: string;
  /** IB-Context header value (IB_CONTEXT); omitted when unset. */
  context?: string;
  /** Deadline of one attempt, from sending to the last body byte. */
  timeoutMs: number;
  /** Retries after the first attempt, for network errors, timeouts, 408, 429, 5xx and unparseable bodies. */
  maxRetries: number;
  retryBaseMs: number;
  /** Cap of one wait, including waits asked for by Retry-After. */
  retryMaxMs: number;
  /** Of maxRetries, how many may be spent on 2xx bodies that are not JSON (e.g. cut off mid-transfer). */
  maxMalformedRetries?: number;
  /** Requests per second across the whole client; 0 = unlimited. */
  rps: number;
  /** Requests in flight at once across the whole client (also the pool's connection count). */
  concurrency: number;
  /** Guard against a server that never stops paging. */
  maxPagesPerWalk: number;
  /** Largest response body read into memory. */
  maxBodyBytes?: number;
  logger?: Logger;
  /** Called after every attempt with the endpoint template and the status (0 for a network error): metrics. */
  onResponse?: (endpoint: string, status: number) => void;
  /** Replaces the per-origin keep-alive Pool, e.g. with undici's MockAgent in tests. Not closed by close(). */
  dispatcher?: Dispatcher;
  /** Test seams: random in [0,1), sleep, wall clock in ms. */
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/**
 * Defaults of the options the config does not expose. Everything else (timeouts, retries, rps,
 * concurrency, the paging cap) comes from the config, whose schema holds the one set of defaults
 * (core/config.ts), so the two cannot drift.
 */
export const DEFAULT_CLIENT_OPTIONS = {
  maxMalformedRetries: 2,
  maxBodyBytes: 64 * 1024 * 1024,
} as const;

export type QueryValue = string | number | bigint | boolean | null | undefined;
export type QueryParams = Record<string, QueryValue | readonly QueryValue[]>;

export interface RequestSpec {
  method: HttpMethod;
  /** Path template below the base URL, e.g. /v2/apps/runs/{run_id}/results. */
  path: string;
  pathParams?: Record<string, string | number | bigint>;
  /** Path parameters that may hold '/' (a file path): each segment is encoded, the slashes kept. */
  multiSegmentParams?: readonly string[];
  query?: QueryParams;
  /** JSON request body. */
  body?: unknown;
  /** Non-2xx statuses that are answers rather than failures (404 for HEAD: the path is absent). */
  acceptStatuses?: readonly number[];
  signal?: AbortSignal;
}

export interface ApiResponse {
  status: number;
  headers: RawResponse['headers'];
  /** Parsed JSON (int64 values past 2^53 as bigint); undefined for HEAD and accepted non-2xx without body. */
  body: unknown;
  /** The raw text, for excerpts. */
  text: string | undefined;
  endpoint: string;
  requestPath: string;
  attempts: number;
}

export class InstabaseClient {
  /** The resolved options, without the token. */
  readonly options: Readonly<
    Required<Omit<InstabaseClientOptions, 'token' | 'context' | 'logger' | 'dispatcher' | 'onResponse'>> & {
      context: string | undefined;
    }
  >;
  readonly logger: Logger;
  private readonly transport: HttpTransport;
  private readonly limiter: RateLimiter;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly authHeaders: Record<string, string>;
  private readonly onResponse: InstabaseClientOptions['onResponse'];

  constructor(opts: InstabaseClientOptions) {
    registerSecret(opts.token);
    if (!opts.token) throw new Error('Instabase client: a token is required (INSTABASE_API_TOKEN)');
    if (opts.context !== undefined && /[\r\n]/.test(opts.context)) {
      throw new Error('Instabase client: IB-Context must not contain line breaks');
    }
    this.random = opts.random ?? Math.random;
    this.onResponse = opts.onResponse;
    this.sleep = opts.sleep ?? realSleep;
    this.now = opts.now ?? Date.now;
    this.options = {
      baseUrl: opts.baseUrl,
      context: opts.context || undefined,
      timeoutMs: opts.timeoutMs,
      maxRetries: Math.max(0, opts.maxRetries),
      retryBaseMs: opts.retryBaseMs,
      retryMaxMs: opts.retryMaxMs,
      maxMalformedRetries: opts.maxMalformedRetries ?? DEFAULT_CLIENT_OPTIONS.maxMalformedRetries,
      rps: opts.rps,
      concurrency: Math.max(1, opts.concurrency),
      maxPagesPerWalk: opts.maxPagesPerWalk,
      maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_CLIENT_OPTIONS.maxBodyBytes,
      random: this.random,
      sleep: this.sleep,
      now: this.now,
    };
    this.logger = (opts.logger ?? createLogger('instabase-client')).child({ component: 'instabase-client' });
    this.transport = new HttpTransport(opts.baseUrl, {
      connections: this.options.concurrency,
      timeoutMs: opts.timeoutMs,
      dispatcher: opts.dispatcher,
    });
    // Real time on purpose: a test's instant sleep would otherwise turn the token wait into a busy loop.
    this.limiter = new RateLimiter({ rps: opts.rps, concurrency: this.options.concurrency });
    this.authHeaders = { authorization: `Bearer ${opts.token}` };
    if (this.options.context) this.authHeaders['ib-context'] = this.options.context;
  }

  /**
   * Sends a request with retries and returns the parsed JSON. Throws an InstabaseError subclass for every
   * failure: unexpected status, network, timeout, or a 2xx body that is not JSON.
   */
  async request(spec: RequestSpec): Promise<ApiResponse> {
    const endpoint = `${spec.method} ${spec.path}`;
    const requestPath = buildPath(spec);
    const headers: Record<string, string> = { ...this.authHeaders, accept: 'application/json' };
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = stringifyJson(spec.body);
      headers['content-type'] = 'application/json';
    }
    const { maxRetries, maxMalformedRetries } = this.options;
    let malformedRetries = 0;

    for (let attempt = 1; ; attempt++) {
      const ctx: ErrorContext = { endpoint, requestPath, attempts: attempt };
      const canRetry = attempt <= maxRetries;
      let raw: RawResponse;
      const started = performance.now();
      const release = await this.limiter.acquire(spec.signal);
      try {
        raw = await this.transport.send({
          method: spec.method,
          path: requestPath,
          headers,
          body,
          timeoutMs: this.options.timeoutMs,
          maxBodyBytes: this.options.maxBodyBytes,
          signal: spec.signal,
        });
      } catch (err) {
        release();
        if (spec.signal?.aborted) throw spec.signal.reason;
        this.onResponse?.(endpoint, 0);
        const failure = networkError(ctx, err);
        if (!canRetry || !failure.retryable) throw failure;
        await this.backoff(ctx, attempt, undefined, failure.causeCode ?? failure.code, spec.signal);
        continue;
      }
      release();
      this.onResponse?.(endpoint, raw.status);
      const ms = Math.round(performance.now() - started);
      this.logger.debug(
        { endpoint, path: requestPath, status: raw.status, attempt, ms },
        'instabase response',
      );

      const ok = raw.status >= 200 && raw.status < 300;
      if (!ok && !spec.acceptStatuses?.includes(raw.status)) {
        const failure = statusError({ ...ctx, status: raw.status, body: raw.text });
        if (!canRetry || !isRetryableStatus(raw.status)) throw failure;
        const retryAfter = parseRetryAfter(raw.headers['retry-after'], this.now());
        await this.backoff(ctx, attempt, retryAfter, `HTTP ${raw.status}`, spec.signal);
        continue;
      }
      if (spec.method === 'HEAD' || !ok) {
        return {
          status: raw.status,
          headers: raw.headers,
          body: undefined,
          text: raw.text,
          endpoint,
          requestPath,
          attempts: attempt,
        };
      }
      const parsed = parseBody({ ...ctx, status: raw.status, body: raw.text }, raw);
      if (parsed instanceof InstabaseMalformedBodyError) {
        if (!canRetry || malformedRetries >= maxMalformedRetries || parsed.kind === 'body_too_large')
          throw parsed;
        malformedRetries++;
        await this.backoff(ctx, attempt, undefined, parsed.kind, spec.signal);
        continue;
      }
      return {
        status: raw.status,
        headers: raw.headers,
        body: parsed.value,
        text: raw.text,
        endpoint,
        requestPath,
        attempts: attempt,
      };
    }
  }

  /** Closes the keep-alive pool (not an injected dispatcher). */
  async close(): Promise<void> {
    await this.transport.close();
  }

  private async backoff(
    ctx: ErrorContext,
    attempt: number,
    retryAfterMs: number | undefined,
    reason: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const delayMs = retryDelay(attempt - 1, retryAfterMs, this.options, this.random);
    this.logger.warn(
      { endpoint: ctx.endpoint, path: ctx.requestPath, attempt, reason, delayMs, retryAfterMs },
      'instabase request failed; retrying',
    );
    await this.sleep(delayMs, signal);
  }
}

function statusError(ctx: ErrorContext & { status: number }): InstabaseHttpStatusError {
  if (ctx.status === 401 || ctx.status === 403) return new InstabaseAuthError(ctx);
  if (ctx.status === 404) return new InstabaseNotFoundError(ctx);
  return new InstabaseHttpStatusError(ctx);
}

function networkError(ctx: ErrorContext, err: unknown): InstabaseNetworkError {
  const e = redactError(err) as Error & { code?: unknown };
  if (err instanceof AttemptTimeoutError) {
    return new InstabaseTimeoutError({ ...ctx, cause: e }, 'ETIMEDOUT', e.message);
  }
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new InstabaseTimeoutError({ ...ctx, cause: e }, code, e.message);
  }
  const detail = `${code ?? e.name}: ${e.message}`;
  return new InstabaseNetworkError({ ...ctx, cause: e }, code, detail, isRetryableNetworkCode(code));
}

function parseBody(ctx: ErrorContext, raw: RawResponse): { value: unknown } | InstabaseMalformedBodyError {
  const contentType = headerValue(raw.headers['content-type']);
  if (raw.bodyProblem === 'too_large') {
    return new InstabaseMalformedBodyError(
      ctx,
      'body_too_large',
      'response body exceeds maxBodyBytes',
      contentType,
    );
  }
  if (raw.bodyProblem === 'invalid_utf8') {
    return new InstabaseMalformedBodyError(ctx, 'invalid_utf8', 'response body is not UTF-8', contentType);
  }
  const text = raw.text ?? '';
  if (text.trim() === '')
    return new InstabaseMalformedBodyError(ctx, 'empty_body', 'empty body', contentType);
  try {
    return { value: parseJson(text) };
  } catch (err) {
    const syntax = err instanceof JsonSyntaxError ? err : undefined;
    const kind = syntax?.truncated ? 'truncated_json' : 'not_json';
    const detail = `${syntax?.message ?? String(err)} (content-type ${contentType ?? 'none'}, ${text.length} chars)`;
    return new InstabaseMalformedBodyError(ctx, kind, detail, contentType);
  }
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function buildPath(spec: RequestSpec): string {
  const path = spec.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = spec.pathParams?.[name];
    if (v === undefined || v === '')
      throw new Error(`${spec.method} ${spec.path}: path parameter ${name} is missing`);
    const s = String(v);
    if (spec.multiSegmentParams?.includes(name)) {
      return s.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
    }
    return encodeURIComponent(s);
  });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(spec.query ?? {})) {
    const values = Array.isArray(v) ? v : [v];
    for (const one of values as QueryValue[]) {
      if (one === undefined || one === null) continue;
      qs.append(k, String(one));
    }
  }
  const q = qs.toString();
  return q ? `${path}?${q}` : path;
}

export { InstabaseError };

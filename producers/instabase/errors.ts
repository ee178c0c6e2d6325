import { redact } from '../../core/secrets.ts';

/** Longest body excerpt an error carries: enough to diagnose, never a whole page of customer data. */
export const BODY_EXCERPT_CHARS = 500;

export function bodyExcerpt(text: string | undefined, max = BODY_EXCERPT_CHARS): string | undefined {
  if (text === undefined) return undefined;
  const cut = text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
  return redact(cut);
}

export interface SchemaIssue {
  /** Path inside the validated value, e.g. ['batches', 3, 'name']. */
  path: (string | number)[];
  code: string;
  message: string;
}

export interface ErrorContext {
  /** Method and path template, e.g. "GET /v2/apps/runs/{run_id}/results". Never holds the token. */
  endpoint: string;
  /** The concrete path that was requested (ids filled in), without the origin. */
  requestPath?: string;
  status?: number;
  body?: string;
  attempts?: number;
  cause?: unknown;
}

/** Base of every error the Instabase client raises; `code` tells the kinds apart without instanceof. */
export abstract class InstabaseError extends Error {
  abstract readonly code: string;
  readonly endpoint: string;
  readonly requestPath: string | undefined;
  readonly status: number | undefined;
  readonly bodyExcerpt: string | undefined;
  readonly attempts: number;
  /** Whether the same request may succeed later (rate limit, outage, network). */
  abstract readonly retryable: boolean;

  constructor(message: string, ctx: ErrorContext) {
    super(redact(`${ctx.endpoint}: ${message}`), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.endpoint = ctx.endpoint;
    this.requestPath = ctx.requestPath === undefined ? undefined : redact(ctx.requestPath);
    this.status = ctx.status;
    this.bodyExcerpt = bodyExcerpt(ctx.body);
    this.attempts = ctx.attempts ?? 1;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      endpoint: this.endpoint,
      requestPath: this.requestPath,
      status: this.status,
      attempts: this.attempts,
      bodyExcerpt: this.bodyExcerpt,
    };
  }
}

/** A status the endpoint does not answer with on success, after any retries were spent. */
export class InstabaseHttpStatusError extends InstabaseError {
  readonly code: string = 'http_status';
  readonly retryable: boolean;
  constructor(ctx: ErrorContext & { status: number }, hint?: string) {
    const retryable = isRetryableStatus(ctx.status);
    const attempts = ctx.attempts ?? 1;
    const after = attempts > 1 ? ` after ${attempts} attempts` : '';
    super(`HTTP ${ctx.status}${after}${hint ? `: ${hint}` : ''}${excerptSuffix(ctx.body)}`, ctx);
    this.retryable = retryable;
  }
}

/** 401 or 403: the credentials, not the request, are wrong. */
export class InstabaseAuthError extends InstabaseHttpStatusError {
  override readonly code = 'auth';
  constructor(ctx: ErrorContext & { status: number }) {
    super(
      ctx,
      ctx.status === 401
        ? 'unauthorized; check the API token (INSTABASE_API_TOKEN) and the IB-Context header (IB_CONTEXT)'
        : 'forbidden; check that the token (INSTABASE_API_TOKEN) may use this account and that IB-Context (IB_CONTEXT) names it',
    );
  }
}

export class InstabaseNotFoundError extends InstabaseHttpStatusError {
  override readonly code = 'not_found';
}

/** The request never got a complete response: connection refused or reset, DNS, TLS, timeout. */
export class InstabaseNetworkError extends InstabaseError {
  readonly code: string = 'network';
  readonly retryable: boolean;
  /** The underlying error code, e.g. ECONNRESET or UND_ERR_SOCKET. */
  readonly causeCode: string | undefined;
  constructor(ctx: ErrorContext, causeCode: string | undefined, detail: string, retryable = true) {
    const attempts = ctx.attempts ?? 1;
    super(`${detail}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`, ctx);
    this.causeCode = causeCode;
    this.retryable = retryable;
  }
}

export class InstabaseTimeoutError extends InstabaseNetworkError {
  override readonly code = 'timeout';
}

export type MalformedKind = 'empty_body' | 'truncated_json' | 'not_json' | 'invalid_utf8' | 'body_too_large';

/** A 2xx whose body is not a JSON document at all. */
export class InstabaseMalformedBodyError extends InstabaseError {
  readonly code = 'malformed_body';
  readonly retryable = true;
  readonly kind: MalformedKind;
  readonly contentType: string | undefined;
  constructor(ctx: ErrorContext, kind: MalformedKind, detail: string, contentType?: string) {
    const attempts = ctx.attempts ?? 1;
    super(
      `malformed response body (${kind}): ${detail}${attempts > 1 ? ` after ${attempts} attempts` : ''}${excerptSuffix(ctx.body)}`,
      ctx,
    );
    this.kind = kind;
    this.contentType = contentType;
  }
}

/** A JSON body whose page envelope (everything but the individual records) breaks the schema. */
export class InstabaseSchemaError extends InstabaseError {
  readonly code = 'schema';
  readonly retryable = false;
  readonly issues: SchemaIssue[];
  constructor(ctx: ErrorContext, issues: SchemaIssue[]) {
    super(`response violates the schema: ${formatIssues(issues)}${excerptSuffix(ctx.body)}`, ctx);
    this.issues = issues;
  }
}

export type PagingFailure = 'repeated_page' | 'no_progress' | 'page_cap' | 'poll_cap';

/** A walk that would not end by itself: the server keeps saying there is more without giving more. */
export class InstabasePagingError extends InstabaseError {
  readonly code = 'paging';
  readonly retryable = false;
  readonly reason: PagingFailure;
  /** The offset (or file_offset / start) of the page that tripped the guard. */
  readonly offset: number;
  readonly pages: number;
  constructor(ctx: ErrorContext, reason: PagingFailure, offset: number, pages: number, detail: string) {
    super(`${detail} (reason ${reason}, offset ${offset}, after ${pages} pages)`, ctx);
    this.reason = reason;
    this.offset = offset;
    this.pages = pages;
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

export function formatIssues(issues: SchemaIssue[], max = 5): string {
  const shown = issues
    .slice(0, max)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return issues.length > max ? `${shown}; and ${issues.length - max} more` : shown;
}

function excerptSuffix(body: string | undefined): string {
  if (body === undefined || body.length === 0) return '';
  return `; body: ${bodyExcerpt(body, 200)}`;
}

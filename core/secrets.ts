// Every secret the process learns is registered here, so that any text leaving the process
// (log lines, error messages, metric labels, status output) can be scrubbed of it.
const secrets = new Set<string>();
/** The same, longest first, so that a secret containing another is replaced whole. */
let ordered: string[] = [];

function add(value: string): void {
  if (secrets.has(value)) return;
  secrets.add(value);
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/** Secrets shorter than this are too likely to match ordinary text to be scrubbed safely. */
const MIN_SECRET_LENGTH = 4;

/**
 * Registers a secret, and the forms it takes on the wire: URL-encoded (a token in a query string or a
 * logged URL) when that differs from the plain text.
 */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  add(value);
  const encoded = encodeURIComponent(value);
  if (encoded !== value) add(encoded);
}

/** `user:password` as an HTTP Basic credential, so a logged Authorization header is scrubbed too. */
export function registerBasicAuth(user: string | undefined, password: string | undefined): void {
  if (!password) return;
  registerSecret(password);
  registerSecret(Buffer.from(`${user ?? ''}:${password}`).toString('base64'));
}

export function redact(text: string): string {
  let out = text;
  for (const secret of ordered) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

/** Scrubs one error's message and stack in place where they hold a secret and can be written. */
function scrub(e: Error): void {
  try {
    const message = redact(e.message);
    if (message !== e.message) e.message = message;
    if (e.stack) {
      const stack = redact(e.stack);
      if (stack !== e.stack) e.stack = stack;
    }
  } catch {
    // A read-only message (e.g. a DOMException's getter): nothing to write, and nothing we put there.
  }
}

/** An Error whose message and stack (and those of its causes) no longer contain any registered secret. */
export function redactError(err: unknown): Error {
  if (err instanceof Error) {
    const seen = new Set<unknown>();
    for (let e: unknown = err; e instanceof Error && !seen.has(e); e = e.cause) {
      seen.add(e);
      scrub(e);
    }
    return err;
  }
  return new Error(redact(String(err)));
}

export type ExternalService = 'Kafka' | 'ClickHouse' | 'schema registry';

/**
 * Why a connection to an external service failed, in words an operator can act on:
 * - auth: credentials refused (retrying will not help);
 * - tls: certificate or protocol mismatch (retrying will not help);
 * - unreachable: nothing answered (may be transient);
 * - other: anything else.
 */
export type FailureKind = 'auth' | 'tls' | 'unreachable' | 'other';

/**
 * A connection failure that names the service, what was tried and which settings to check. The message
 * is scrubbed of every registered secret when the error is made; the original error stays as `cause`
 * (scrubbed too).
 */
export class ServiceConnectionError extends Error {
  constructor(
    readonly service: ExternalService,
    readonly kind: FailureKind,
    message: string,
    cause?: unknown,
  ) {
    super(redact(message), cause === undefined ? undefined : { cause: redactError(cause) });
    this.name = 'ServiceConnectionError';
    if (this.stack) this.stack = redact(this.stack);
  }

  /** Credentials and certificates do not fix themselves: callers should stop instead of retrying. */
  get permanent(): boolean {
    return this.kind === 'auth' || this.kind === 'tls';
  }
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'EPROTO',
]);
const TLS_TEXT =
  /certificate|self[- ]signed|altnames|wrong version number|ssl routines|tls|packet length too long|secure TLS connection/i;
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** The errors of a cause chain (and of AggregateErrors), outermost first, cycles cut. */
export function errorChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  const queue: unknown[] = [err];
  while (queue.length && out.length < 20) {
    const e = queue.shift();
    if (e === undefined || e === null || out.includes(e)) continue;
    out.push(e);
    const obj = e as { cause?: unknown; errors?: unknown; originalError?: unknown };
    if (obj.cause !== undefined) queue.push(obj.cause);
    if (obj.originalError !== undefined) queue.push(obj.originalError);
    if (Array.isArray(obj.errors)) queue.push(...(obj.errors as unknown[]));
  }
  return out;
}

/** The node-level (TLS, socket) failure somewhere in a cause chain, if any. */
export function networkFailure(err: unknown): { kind: 'tls' | 'unreachable'; detail: string } | undefined {
  for (const e of errorChain(err)) {
    const code = String((e as { code?: unknown })?.code ?? '');
    const message = String((e as { message?: unknown })?.message ?? e);
    const line = (message.split('\n')[0] ?? '').trim().slice(0, 300);
    const detail = redact(code && !line.includes(code) ? `${code}: ${line}` : line);
    if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) {
      return { kind: 'tls', detail };
    }
    if (UNREACHABLE_CODES.has(code)) return { kind: 'unreachable', detail };
  }
  for (const e of errorChain(err)) {
    const message = String((e as { message?: unknown })?.message ?? e);
    if (TLS_TEXT.test(message))
      return { kind: 'tls', detail: redact((message.split('\n')[0] ?? '').slice(0, 300)) };
  }
  return undefined;
}

/** The first line of an error's message, scrubbed, for embedding in a friendlier one. */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return redact(text.split('\n')[0] ?? '').slice(0, 300);
}

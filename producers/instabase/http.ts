import { Pool, type Dispatcher } from 'undici';

export type HttpMethod = 'GET' | 'POST' | 'HEAD';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as text; undefined for HEAD. */
  text: string | undefined;
  /** Why the body could not be read as text, when that happened. */
  bodyProblem?: 'too_large' | 'invalid_utf8';
}

export interface AttemptOptions {
  method: HttpMethod;
  /** Path below the base URL, already encoded, with its query string. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Largest body read into memory; past it the attempt fails as malformed. */
  maxBodyBytes: number;
  signal?: AbortSignal;
}

/** Thrown when an attempt's own deadline passed, as opposed to the caller aborting. */
export class AttemptTimeoutError extends Error {
  override readonly name = 'AttemptTimeoutError';
  readonly code = 'ETIMEDOUT';
}

/**
 * One HTTP exchange over a keep-alive pool for the API's origin. Knows nothing of retries, auth or JSON;
 * it sends, waits at most timeoutMs for the whole response, and hands back the text.
 */
export class HttpTransport {
  readonly origin: string;
  readonly basePath: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;

  constructor(baseUrl: string, opts: { connections: number; timeoutMs: number; dispatcher?: Dispatcher }) {
    const url = new URL(baseUrl);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    if (opts.dispatcher) {
      this.dispatcher = opts.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Pool(this.origin, {
        connections: opts.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: opts.timeoutMs },
      });
      this.ownsDispatcher = true;
    }
  }

  async send(opts: AttemptOptions): Promise<RawResponse> {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    try {
      const res = await this.dispatcher.request({
        origin: this.origin,
        path: this.basePath + opts.path,
        method: opts.method,
        headers: opts.headers,
        body: opts.body ?? null,
        signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        // POST /v1/auditlogs is a read; let the pool treat it like a GET.
        idempotent: true,
      });
      if (opts.method === 'HEAD') {
        await res.body.dump();
        return { status: res.statusCode, headers: res.headers, text: undefined };
      }
      const read = await readBody(res.body, opts.maxBodyBytes);
      return { status: res.statusCode, headers: res.headers, ...read };
    } catch (err) {
      if (deadline.aborted && !opts.signal?.aborted) {
        throw new AttemptTimeoutError(`no complete response within ${opts.timeoutMs} ms`, { cause: err });
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

async function readBody(
  body: AsyncIterable<Uint8Array> & { destroy(err?: Error): unknown },
  maxBytes: number,
): Promise<Pick<RawResponse, 'text' | 'bodyProblem'>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      body.destroy();
      return { text: Buffer.concat(chunks).subarray(0, 2048).toString('utf8'), bodyProblem: 'too_large' };
    }
    chunks.push(chunk);
  }
  const buf = Buffer.concat(chunks, size);
  try {
    return { text: decoder.decode(buf) };
  } catch {
    return { text: buf.toString('utf8'), bodyProblem: 'invalid_utf8' };
  }
}

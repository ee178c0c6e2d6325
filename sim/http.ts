// The HTTP plumbing every route shares: the error a handler throws to answer with a status, the JSON
// writer, the request body reader, and the parsers of path segments and query parameters (a malformed
// value is the client's error, a 400).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toJson } from './json.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function writeJson(
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

export function readBody(req: IncomingMessage): Promise<string> {
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

/** A path segment, percent-decoded; a malformed escape (%zz) is the client's error, a 400. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: ${segment}`);
  }
}

export function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new HttpError(400, `${name} must be an integer`);
  return Number(v);
}

export function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === 'false' || v === 'False' || v === '0') return false;
  if (v === 'true' || v === 'True' || v === '1') return true;
  throw new HttpError(400, `${name} must be true or false`);
}

export function enumParam<T extends string>(
  q: URLSearchParams,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!values.includes(v as T)) throw new HttpError(400, `${name} must be one of ${values.join(', ')}`);
  return v as T;
}

/** Answers a request whose handler threw: its HttpError's status, or 500. Returns the status sent. */
export function writeError(req: IncomingMessage, res: ServerResponse, err: unknown): number {
  const status = err instanceof HttpError ? err.status : 500;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return status;
  }
  const headers = err instanceof HttpError ? err.headers : {};
  if (req.method === 'HEAD') {
    // No body, but the media type an error would have (the spec documents application/json).
    res.writeHead(status, { ...headers, 'content-type': 'application/json' });
    res.end();
    return status;
  }
  writeJson(res, status, { message: err instanceof Error ? err.message : String(err) }, headers);
  return status;
}

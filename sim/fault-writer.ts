// How a drawn fault (./faults.ts) reaches the wire: some replace the answer before the route runs (429,
// 500, 503, a reset before the headers), the others spoil the answer the route gave (a cut body, junk, a
// reset half way through the body).
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Fault, FaultOptions } from './faults.ts';
import { writeJson } from './http.ts';
import { toJson } from './json.ts';

/**
 * Answers in place of the route when the fault calls for it; true when it did (or dropped the
 * connection). `count` records the status sent.
 */
export function writeEarlyFault(
  fault: Fault,
  options: FaultOptions,
  res: ServerResponse,
  socket: Socket,
  count: (status: number) => void,
): boolean {
  switch (fault.kind) {
    case '429': {
      const s = options.retryAfterS;
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
}

/** Writes a route's JSON answer, spoiled as the fault (if any) says. */
export function writeJsonWithFault(
  res: ServerResponse,
  status: number,
  body: unknown,
  fault: Fault | undefined,
): void {
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
}

// Backoff arithmetic, kept free of I/O so it can be tested with fixed random numbers and clocks.

export interface BackoffOptions {
  /** Base delay of the first retry, in ms. */
  retryBaseMs: number;
  /** Upper bound of any single wait, including one asked for by Retry-After. */
  retryMaxMs: number;
}

/**
 * "Full jitter" (AWS architecture blog): a uniform wait in [0, min(max, base * 2^attempt)). Spreading the
 * retries of many clients over the whole window avoids them hammering a recovering server in lockstep.
 * `attempt` counts retries from 0.
 */
export function fullJitterDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Parses Retry-After in both forms RFC 9110 allows: delay-seconds or an HTTP-date. Returns the wait in ms,
 * or undefined when the header is absent or unreadable (then the normal backoff applies).
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (/^-?\d+(\.\d+)?$/.test(text)) {
    // Not RFC-conformant but seen in the wild; a negative value means "now".
    return Math.max(0, Math.round(Number(text) * 1000));
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The wait before the next attempt: what the server asked for when it asked, else jittered backoff; capped. */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  opts: BackoffOptions,
  random: () => number,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, opts.retryMaxMs);
  return fullJitterDelay(attempt, opts, random);
}

/** Network error codes that mean the request can simply be sent again. */
const NON_RETRYABLE_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_DESTROYED',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
  'ERR_INVALID_URL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

export function isRetryableNetworkCode(code: string | undefined): boolean {
  return code === undefined || !NON_RETRYABLE_CODES.has(code);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 && !signal?.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

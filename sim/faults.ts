// Per-request misbehaviour. Transient faults are drawn from a seeded sequence in arrival order; a request
// (method, path, query, body) never fails more than maxConsecutive times in a row, so a client with at
// least that many retries always gets through and record counts stay exact.
import { sequence } from './rng.ts';

export interface FaultOptions {
  /** Probability of 429 with Retry-After. */
  rate429: number;
  /** Retry-After value in seconds; sent as delay-seconds or as an HTTP-date (alternating). */
  retryAfterS: number;
  rate500: number;
  rate503: number;
  /** Probability of a delayed response, and the delay. */
  rateSlow: number;
  slowMs: number;
  /** Probability of a 200 whose JSON is cut short (Content-Length matches the short body). */
  rateTruncate: number;
  /** Probability of a 200 that is not JSON at all (an HTML error page, stray bytes). */
  rateMalformed: number;
  /** Probability of a connection reset, before the headers or in the middle of the body. */
  rateReset: number;
  maxConsecutive: number;
}

export const NO_FAULTS: FaultOptions = {
  rate429: 0,
  retryAfterS: 1,
  rate500: 0,
  rate503: 0,
  rateSlow: 0,
  slowMs: 200,
  rateTruncate: 0,
  rateMalformed: 0,
  rateReset: 0,
  maxConsecutive: 2,
};

export type FaultKind = '429' | '500' | '503' | 'slow' | 'truncate' | 'malformed' | 'reset';

export interface Fault {
  kind: FaultKind;
  /** A second draw, for the variant of the fault (where to cut, which form of Retry-After). */
  variant: number;
}

const ORDER: ReadonlyArray<[FaultKind, keyof FaultOptions]> = [
  ['429', 'rate429'],
  ['500', 'rate500'],
  ['503', 'rate503'],
  ['slow', 'rateSlow'],
  ['truncate', 'rateTruncate'],
  ['malformed', 'rateMalformed'],
  ['reset', 'rateReset'],
];

export class FaultInjector {
  private opts: FaultOptions;
  private readonly next: () => number;
  private readonly streak = new Map<string, number>();
  readonly injected: Record<FaultKind, number> = {
    '429': 0,
    '500': 0,
    '503': 0,
    slow: 0,
    truncate: 0,
    malformed: 0,
    reset: 0,
  };

  constructor(seed: number, opts: Partial<FaultOptions> = {}) {
    this.opts = { ...NO_FAULTS, ...opts };
    this.next = sequence(seed ^ 0x5eed_fa17);
  }

  get options(): Readonly<FaultOptions> {
    return this.opts;
  }

  set(opts: Partial<FaultOptions>): void {
    this.opts = { ...this.opts, ...opts };
    this.streak.clear();
  }

  /** The fault for this request, if any. `bodyless` requests (HEAD) cannot be truncated or malformed. */
  decide(signature: string, bodyless: boolean): Fault | undefined {
    const u = this.next();
    const variant = this.next();
    let acc = 0;
    let kind: FaultKind | undefined;
    for (const [k, key] of ORDER) {
      acc += this.opts[key];
      if (u < acc) {
        kind = k;
        break;
      }
    }
    if (kind && bodyless && (kind === 'truncate' || kind === 'malformed')) kind = undefined;
    const streak = this.streak.get(signature) ?? 0;
    if (!kind || streak >= this.opts.maxConsecutive) {
      this.streak.delete(signature);
      return undefined;
    }
    if (this.streak.size > 100_000) this.streak.clear();
    this.streak.set(signature, streak + 1);
    this.injected[kind]++;
    return { kind, variant };
  }
}

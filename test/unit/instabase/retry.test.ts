import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullJitterDelay, parseRetryAfter, retryDelay } from '../../../producers/instabase/index.ts';

const NOW = Date.parse('2026-01-10T00:00:00Z');
const opts = { retryBaseMs: 100, retryMaxMs: 5000 };

describe('Retry-After', () => {
  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('7', NOW), 7000);
    assert.equal(parseRetryAfter(['3', '9'], NOW), 3000);
    assert.equal(parseRetryAfter('0', NOW), 0);
  });
  it('reads an HTTP-date, in the past as zero', () => {
    assert.equal(parseRetryAfter('Sat, 10 Jan 2026 00:00:30 GMT', NOW), 30_000);
    assert.equal(parseRetryAfter('Fri, 09 Jan 2026 23:00:00 GMT', NOW), 0);
  });
  it('ignores what it cannot read', () => {
    assert.equal(parseRetryAfter(undefined, NOW), undefined);
    assert.equal(parseRetryAfter('', NOW), undefined);
    assert.equal(parseRetryAfter('soon', NOW), undefined);
  });
  it('is capped at retryMaxMs and wins over backoff', () => {
    assert.equal(
      retryDelay(0, 3_600_000, opts, () => 0.5),
      5000,
    );
    assert.equal(
      retryDelay(4, 1200, opts, () => 0.99),
      1200,
    );
  });
});

describe('full jitter', () => {
  it('draws uniformly below min(cap, base * 2^attempt)', () => {
    assert.equal(
      fullJitterDelay(0, opts, () => 0.999),
      99,
    );
    assert.equal(
      fullJitterDelay(3, opts, () => 0.5),
      400,
    );
    assert.equal(
      fullJitterDelay(10, opts, () => 0.5),
      2500,
    );
    assert.equal(
      fullJitterDelay(1000, opts, () => 0.999),
      4995,
    );
    assert.equal(
      fullJitterDelay(2, opts, () => 0),
      0,
    );
  });
});

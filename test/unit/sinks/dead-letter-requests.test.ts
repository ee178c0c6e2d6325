import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from 'kafkajs';
import {
  deadLetterRequests,
  fitDeadLetter,
  messageBytes,
  requestBudget,
} from '../../../sinks/dead-letter-requests.ts';

const letter = (i: number, valueBytes: number): Message => ({
  key: `k${i}`,
  value: Buffer.alloc(valueBytes, 0x61 + (i % 26)),
  headers: { 'x-error-reason': 'not-wire-format', 'x-source-offset': String(i) },
});

test('a record is counted with its key, value, headers and framing', () => {
  const m = letter(7, 100);
  // 40 framing + key 2 + value 100 + ("x-error-reason" 14 + 40 + 15) + ("x-source-offset" 15 + 40 + 1)
  assert.equal(messageBytes(m), 40 + 2 + 100 + (14 + 40 + 15) + (15 + 40 + 1));
  assert.equal(messageBytes({ key: null, value: null }), 40);
  assert.equal(requestBudget(1_000), 900);
});

test('dead letters go out in order, in requests within the budget, each request holding at least one', () => {
  const letters = Array.from({ length: 50 }, (_, i) => letter(i, 10 + ((i * 37) % 300)));
  const budget = 1_000;
  const requests = deadLetterRequests(letters, budget);
  assert.deepEqual(requests.flat(), letters, 'every letter once, in order');
  for (const r of requests) assert.ok(r.reduce((n, m) => n + messageBytes(m), 0) <= budget);
  // Each request is as full as the next letter allows: a request and the next one's first letter exceed it.
  for (let i = 0; i + 1 < requests.length; i += 1) {
    const bytes = requests[i]!.reduce((n, m) => n + messageBytes(m), 0);
    assert.ok(bytes + messageBytes(requests[i + 1]![0]!) > budget);
  }
  assert.deepEqual(deadLetterRequests([], budget), []);
});

test('a letter over the budget keeps a prefix of its value and says how long it was', () => {
  const small = letter(1, 100);
  assert.equal(fitDeadLetter(small, 1_000), small, 'one that fits is left as it is');
  const big = letter(2, 5_000);
  const fitted = fitDeadLetter(big, 1_000);
  assert.equal(fitted.headers?.['x-value-bytes'], '5000');
  assert.equal(fitted.headers?.['x-error-reason'], 'not-wire-format');
  assert.equal(fitted.key, big.key);
  assert.equal(messageBytes(fitted), 1_000, 'as much of the value as fits');
  assert.deepEqual(fitted.value, (big.value as Buffer).subarray(0, (fitted.value as Buffer).length));
  // A string value is cut by bytes.
  const text = fitDeadLetter({ key: 'k', value: 'é'.repeat(1_000), headers: {} }, 500);
  assert.ok(messageBytes(text) <= 500);
  assert.equal(text.headers?.['x-value-bytes'], '2000');
});

test('a key over the budget is cut too, so that the letter fits whatever it carried', () => {
  const fitted = fitDeadLetter(
    { key: Buffer.alloc(3_000, 0x6b), value: Buffer.alloc(100), headers: {} },
    1_000,
  );
  assert.ok(messageBytes(fitted) <= 1_000, `${messageBytes(fitted)} bytes`);
  assert.equal(fitted.headers?.['x-key-bytes'], '3000');
  assert.equal(fitted.headers?.['x-value-bytes'], '100');
  assert.deepEqual(fitted.key, Buffer.alloc((fitted.key as Buffer).length, 0x6b));
  assert.equal((fitted.value as Buffer).length, 0);
});

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  InstabaseAuthError,
  InstabaseHttpStatusError,
  InstabaseMalformedBodyError,
  InstabaseNetworkError,
  InstabaseNotFoundError,
  InstabaseTimeoutError,
  type InstabaseError,
} from '../../../producers/instabase/index.ts';
import { json, testClient, TOKEN, type TestClient } from './helpers.ts';

const BATCHES = { method: 'GET' as const, path: '/v2/batches' };
let t: TestClient;

afterEach(async () => {
  await t.agent.close();
});

function isError<T extends InstabaseError>(cls: new (...a: never[]) => T, check: (e: T) => void) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    check(e);
    return true;
  };
}

describe('InstabaseClient retries', () => {
  it('sends the Bearer token and IB-Context, and parses JSON', async () => {
    t = testClient();
    let seen: Record<string, string> = {};
    t.pool.intercept({ path: '/api/v2/batches?limit=2', method: 'GET' }).reply((opts) => {
      seen = opts.headers as Record<string, string>;
      return {
        statusCode: 200,
        data: '{"batches":[{"id":1,"name":"a","created_at_ms":1765912514238248673}]}',
        responseOptions: { headers: json },
      };
    });
    const res = await t.client.request({ ...BATCHES, query: { limit: 2 } });
    assert.equal(seen.authorization, `Bearer ${TOKEN}`);
    assert.equal(seen['ib-context'], 'acme_org');
    assert.deepEqual(res.body, { batches: [{ id: 1, name: 'a', created_at_ms: 1765912514238248673n }] });
    assert.equal(res.attempts, 1);
  });

  it('retries 5xx with full-jitter backoff, then succeeds', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches' }).reply(500, { message: 'boom' }).times(1);
    t.pool.intercept({ path: '/api/v2/batches' }).reply(503, { message: 'busy' }).times(1);
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    const res = await t.client.request(BATCHES);
    assert.equal(res.attempts, 3);
    // random() = 0.5: half of base*2^0 and base*2^1.
    assert.deepEqual(t.sleeps, [50, 100]);
  });

  it('retries 408 and network errors', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches' }).reply(408, '').times(1);
    t.pool
      .intercept({ path: '/api/v2/batches' })
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    const res = await t.client.request(BATCHES);
    assert.equal(res.attempts, 3);
  });

  it('honours Retry-After in seconds', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/batches' })
      .reply(429, { message: 'slow down' }, { headers: { 'retry-after': '2' } });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    await t.client.request(BATCHES);
    assert.deepEqual(t.sleeps, [2000]);
  });

  it('honours Retry-After as an HTTP-date', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/batches' })
      .reply(503, '', { headers: { 'retry-after': 'Sat, 10 Jan 2026 00:00:03 GMT' } });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    await t.client.request(BATCHES);
    assert.deepEqual(t.sleeps, [3000]);
  });

  it('caps a long Retry-After at retryMaxMs', async () => {
    t = testClient({ retryMaxMs: 1500 });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(429, '', { headers: { 'retry-after': '3600' } });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    await t.client.request(BATCHES);
    assert.deepEqual(t.sleeps, [1500]);
  });

  it('gives up after maxRetries with a typed error carrying endpoint, status and a bounded excerpt', async () => {
    t = testClient({ maxRetries: 2 });
    const big = JSON.stringify({ message: 'x'.repeat(5000) });
    t.pool.intercept({ path: '/api/v2/apps/runs/r-1/results?file_offset=0' }).reply(503, big).times(3);
    await assert.rejects(
      t.client.request({
        method: 'GET',
        path: '/v2/apps/runs/{run_id}/results',
        pathParams: { run_id: 'r-1' },
        query: { file_offset: 0 },
      }),
      isError(InstabaseHttpStatusError, (e) => {
        assert.equal(e.endpoint, 'GET /v2/apps/runs/{run_id}/results');
        assert.equal(e.requestPath, '/v2/apps/runs/r-1/results?file_offset=0');
        assert.equal(e.status, 503);
        assert.equal(e.attempts, 3);
        assert.equal(e.retryable, true);
        assert.ok(e.bodyExcerpt !== undefined && e.bodyExcerpt.length < 540, 'excerpt is bounded');
        assert.ok(e.message.length < 600, 'message is bounded');
      }),
    );
    assert.equal(t.sleeps.length, 2);
  });

  it('retries POST /v1/auditlogs, resending the body', async () => {
    t = testClient();
    const bodies: string[] = [];
    t.pool
      .intercept({ path: '/api/v1/auditlogs', method: 'POST' })
      .reply((o) => {
        bodies.push(String(o.body));
        return { statusCode: bodies.length === 1 ? 502 : 200, data: { status: 'OK', data: { results: [] } } };
      })
      .times(2);
    await t.client.request({
      method: 'POST',
      path: '/v1/auditlogs',
      body: { start: 0, size: 10, start_time: '1749139277810' },
    });
    assert.equal(bodies.length, 2);
    assert.equal(bodies[0], bodies[1]);
    assert.deepEqual(JSON.parse(bodies[1]!), { start: 0, size: 10, start_time: '1749139277810' });
  });

  it('times out an attempt that takes too long, and retries it', async () => {
    t = testClient({ timeoutMs: 50, maxRetries: 1 });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] }).delay(500);
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] });
    const res = await t.client.request(BATCHES);
    assert.equal(res.attempts, 2);
  });

  it('reports a timeout that outlasts the retries as InstabaseTimeoutError', async () => {
    t = testClient({ timeoutMs: 30, maxRetries: 1 });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, { batches: [] }).delay(300).times(2);
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseTimeoutError, (e) => {
        assert.equal(e.endpoint, 'GET /v2/batches');
        assert.equal(e.attempts, 2);
      }),
    );
  });

  it('reports a network error that outlasts the retries as InstabaseNetworkError', async () => {
    t = testClient({ maxRetries: 1 });
    t.pool
      .intercept({ path: '/api/v2/batches' })
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
      .times(2);
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseNetworkError, (e) => {
        assert.equal(e.causeCode, 'ECONNREFUSED');
        assert.equal(e.attempts, 2);
      }),
    );
  });
});

describe('InstabaseClient fails fast', () => {
  for (const status of [400, 404, 409, 422]) {
    it(`does not retry ${status}`, async () => {
      t = testClient();
      t.pool.intercept({ path: '/api/v2/batches' }).reply(status, { message: 'nope' });
      await assert.rejects(
        t.client.request(BATCHES),
        isError(InstabaseHttpStatusError, (e) => {
          assert.equal(e.status, status);
          assert.equal(e.attempts, 1);
          assert.equal(e.retryable, false);
          assert.equal(e.bodyExcerpt, '{"message":"nope"}');
          if (status === 404) assert.ok(e instanceof InstabaseNotFoundError);
        }),
      );
      assert.equal(t.sleeps.length, 0);
    });
  }

  it('401 says to check the token and IB-Context', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches' }).reply(401, { message: 'Unauthorized' });
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseAuthError, (e) => {
        assert.equal(e.status, 401);
        assert.equal(e.code, 'auth');
        assert.match(e.message, /token/);
        assert.match(e.message, /IB-Context/);
        assert.match(e.message, /GET \/v2\/batches/);
      }),
    );
  });

  it('403 says to check the token and IB-Context', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches' }).reply(403, '');
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseAuthError, (e) => {
        assert.equal(e.status, 403);
        assert.match(e.message, /IB-Context/);
        assert.match(e.message, /token/);
      }),
    );
  });
});

describe('InstabaseClient malformed bodies', () => {
  const cases: Array<[string, string, string]> = [
    ['truncated JSON', '{"batches":[{"id":1,"na', 'truncated_json'],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>', 'not_json'],
    ['trailing garbage', '{"batches":[]}}{', 'not_json'],
    ['an empty body', '', 'empty_body'],
  ];
  for (const [name, body, kind] of cases) {
    it(`retries ${name} maxMalformedRetries times, then raises kind ${kind}`, async () => {
      t = testClient({ maxRetries: 5, maxMalformedRetries: 2 });
      t.pool.intercept({ path: '/api/v2/batches' }).reply(200, body).times(3);
      await assert.rejects(
        t.client.request(BATCHES),
        isError(InstabaseMalformedBodyError, (e) => {
          assert.equal(e.kind, kind);
          assert.equal(e.status, 200);
          assert.equal(e.endpoint, 'GET /v2/batches');
          assert.equal(e.attempts, 3);
          assert.equal(e.bodyExcerpt, body);
        }),
      );
    });
  }

  it('recovers when a retry brings the whole body', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, '{"batches":[').times(1);
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, '{"batches":[]}');
    const res = await t.client.request(BATCHES);
    assert.deepEqual(res.body, { batches: [] });
    assert.equal(res.attempts, 2);
  });

  it('bounds the excerpt of a huge bad body', async () => {
    t = testClient({ maxMalformedRetries: 0 });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, `<html>${'y'.repeat(100_000)}`);
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseMalformedBodyError, (e) => {
        assert.ok((e.bodyExcerpt ?? '').length <= 520);
        assert.ok(e.message.length < 800);
      }),
    );
  });

  it('rejects bodies over maxBodyBytes without retrying', async () => {
    t = testClient({ maxBodyBytes: 1000 });
    t.pool.intercept({ path: '/api/v2/batches' }).reply(200, JSON.stringify({ batches: 'z'.repeat(5000) }));
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseMalformedBodyError, (e) => assert.equal(e.kind, 'body_too_large')),
    );
    assert.equal(t.sleeps.length, 0);
  });

  it('HEAD returns headers and treats an accepted 404 as an answer', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/files/org/ws/fs/Instabase%20Drive/a%23b.pdf', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-type': 'application/octet-stream', 'content-length': '12' } });
    t.pool.intercept({ path: '/api/v2/files/org/missing', method: 'HEAD' }).reply(404, '');
    const spec = {
      method: 'HEAD' as const,
      path: '/v2/files/{path}',
      multiSegmentParams: ['path'],
      acceptStatuses: [404],
    };
    const file = await t.client.request({
      ...spec,
      pathParams: { path: 'org/ws/fs/Instabase Drive/a#b.pdf' },
    });
    assert.equal(file.status, 200);
    assert.equal(file.headers['content-type'], 'application/octet-stream');
    const missing = await t.client.request({ ...spec, pathParams: { path: '/org/missing' } });
    assert.equal(missing.status, 404);
  });
});

describe('InstabaseClient bodies that are not text', () => {
  it('reports a body that is not UTF-8 as malformed, with endpoint and status', async () => {
    t = testClient({ maxMalformedRetries: 0 });
    t.pool
      .intercept({ path: '/api/v2/batches' })
      .reply(200, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    await assert.rejects(
      t.client.request(BATCHES),
      isError(InstabaseMalformedBodyError, (e) => {
        assert.equal(e.kind, 'invalid_utf8');
        assert.equal(e.status, 200);
        assert.equal(e.endpoint, 'GET /v2/batches');
        assert.ok(e.bodyExcerpt !== undefined);
      }),
    );
  });
});

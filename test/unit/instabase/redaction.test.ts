import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InstabaseClient, InstabaseError, walk } from '../../../producers/instabase/index.ts';
import { batches } from '../../../producers/resources.ts';
import { captureLogger, testClient, TOKEN } from './helpers.ts';

describe('token redaction', () => {
  it('keeps the token out of every log line and every error, even when the server echoes it', async () => {
    const t = testClient({ maxRetries: 2 });
    const echo = JSON.stringify({ message: `bad header Authorization: Bearer ${TOKEN}` });
    t.pool
      .intercept({ path: (p) => p.startsWith('/api/v2/batches') })
      .reply(503, echo)
      .times(3);
    t.pool.intercept({ path: '/api/v2/apps/runs' }).reply(401, echo);
    t.pool.intercept({ path: '/api/v2/apps/runs/x' }).reply(200, `<html>${TOKEN}</html>`).times(3);
    t.pool
      .intercept({ path: '/api/v2/queries/q' })
      .replyWithError(Object.assign(new Error(`connect failed for ${TOKEN}`), { code: 'ECONNREFUSED' }))
      .times(3);
    t.pool
      .intercept({ path: '/api/v1/auditlogs', method: 'POST' })
      .reply(200, `{"status":"OK","data":${TOKEN}`)
      .times(3);

    const errors: unknown[] = [];
    const attempts = [
      async () => {
        for await (const _ of walk(t.client, batches)) void _;
      },
      () => t.client.request({ method: 'GET', path: '/v2/apps/runs' }),
      () => t.client.request({ method: 'GET', path: '/v2/apps/runs/{run_id}', pathParams: { run_id: 'x' } }),
      () =>
        t.client.request({ method: 'GET', path: '/v2/queries/{query_id}', pathParams: { query_id: 'q' } }),
      () => t.client.request({ method: 'POST', path: '/v1/auditlogs', body: {} }),
    ];
    for (const attempt of attempts) {
      try {
        await attempt();
        assert.fail('expected an error');
      } catch (e) {
        assert.ok(e instanceof InstabaseError, String(e));
        errors.push(e);
        t.client.logger.error({ err: e }, 'walk failed');
      }
    }
    t.client.logger.info(
      { options: t.client.options, headers: { authorization: `Bearer ${TOKEN}` } },
      'config',
    );
    await t.agent.close();

    assert.ok(t.lines.length > 10, 'logs were captured');
    for (const line of t.lines) assert.ok(!line.includes(TOKEN), `token in log line: ${line}`);
    for (const e of errors as InstabaseError[]) {
      const everything = [
        e.message,
        e.stack,
        e.bodyExcerpt,
        JSON.stringify(e),
        String(e),
        String((e.cause as Error | undefined)?.message),
      ].join('\n');
      assert.ok(!everything.includes(TOKEN), `token in ${e.name}: ${everything}`);
    }
    assert.ok(
      errors.some((e) => (e as InstabaseError).bodyExcerpt?.includes('***')),
      'echoed token was scrubbed',
    );
  });

  it('registers the token at construction, before any request', () => {
    const secret = 'tok-constructed-only-9876';
    const { logger, lines } = captureLogger();
    new InstabaseClient({
      baseUrl: 'https://aihub.test/api',
      token: secret,
      timeoutMs: 1000,
      maxRetries: 0,
      retryBaseMs: 1,
      retryMaxMs: 1,
      rps: 0,
      concurrency: 1,
      maxPagesPerWalk: 1,
      logger,
    });
    logger.warn(`oops ${secret}`);
    assert.ok(lines.length === 1 && !lines[0]!.includes(secret));
  });
});

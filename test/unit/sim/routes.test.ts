/**
 * The simulator's route table (sim/routes.ts), called without HTTP: which route answers a path, what a
 * path that names nothing gets, and that parameters reach handlers still encoded, so each handler
 * decides in its own order what is a 404 and what a 400 (as the one closure it replaced did).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RESOURCE_NAMES } from '../../../core/resources.ts';
import { DEFAULT_GROWTH, DEFAULT_START_TIME, SimData } from '../../../sim/data.ts';
import { HttpError } from '../../../sim/http.ts';
import { DEFAULT_SCALE, SIM_RESOURCES } from '../../../sim/modules.ts';
import { dispatch, GROUND_TRUTH } from '../../../sim/routes.ts';
import type { Reply, SimContext } from '../../../sim/serve.ts';

const data = new SimData({
  seed: 'routes',
  startTime: DEFAULT_START_TIME,
  scale: { ...DEFAULT_SCALE, batches: 5, runs: 3, conversations: 2 },
  growth: DEFAULT_GROWTH,
  badRecords: 0,
  edgeValues: false,
});
const ctx: SimContext = { data, endless: () => 'off', resources: SIM_RESOURCES };
const t = DEFAULT_START_TIME;

const call = (method: string, path: string, body = ''): Reply | string => {
  try {
    return dispatch(ctx, method, path, new URLSearchParams(), body, t);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    const allow = err.headers.allow ? ` (allow ${err.headers.allow})` : '';
    return `${err.status} ${err.message}${allow}`;
  }
};

describe('sim route table', () => {
  it('serves every resource, and has the ground truth of all but document metadata', () => {
    for (const name of RESOURCE_NAMES) assert.notEqual(SIM_RESOURCES[name].routes.length, 0, name);
    assert.deepEqual(
      Object.keys(GROUND_TRUTH).sort(),
      RESOURCE_NAMES.filter((n) => n !== 'conversation_document_metadata').sort(),
    );
  });

  it('answers each route with its resource', () => {
    const run = data.runId(0);
    const reply = (r: Reply | string) => (typeof r === 'string' ? r : `${r.kind} ${r.status}`);
    assert.deepEqual(
      [
        call('GET', '/v2/batches'),
        call('GET', '//v2/batches/'),
        call('GET', '/v2/batches/1/files'),
        call('GET', `/v2/apps/runs/${run}`),
        call('GET', `/v2/apps/runs/${run}/results`),
        call('POST', '/v1/auditlogs', '{}'),
        call('HEAD', `/v2/files/${data.filePath(0)}`),
      ].map(reply),
      ['json 200', 'json 200', 'json 200', 'json 200', 'json 200', 'json 200', 'head 200'],
    );
  });

  it('below a parent, an unknown parent is its own 404 and a known one has no such route', () => {
    const run = data.runId(0);
    const conversation = data.conversationId(0);
    assert.deepEqual(
      [
        call('GET', '/v2/apps/runs/nope/x'),
        call('GET', `/v2/apps/runs/${run}/x`),
        call('GET', '/v2/conversations/nope/documents'),
        call('GET', `/v2/conversations/${conversation}/documents`),
        call('GET', '/v2/batches/nope/x'),
        call('GET', '/v2/queries/nope/x'),
      ],
      [
        '404 Run not found',
        `404 no route for GET /v2/apps/runs/${run}/x`,
        '404 Conversation not found',
        `404 no route for GET /v2/conversations/${conversation}/documents`,
        '404 no route for GET /v2/batches/nope/x',
        '404 no route for GET /v2/queries/nope/x',
      ],
    );
  });

  it('decodes parameters in the handler: an unknown parent is found out before a bad escape below it', () => {
    assert.deepEqual(
      [
        call('GET', '/v2/conversations/nope/documents/%zz'),
        call('GET', `/v2/conversations/${data.conversationId(0)}/documents/%zz`),
        call('GET', '/v2/apps/runs/%zz'),
      ],
      [
        '404 Conversation not found',
        '400 malformed percent-encoding in the path: %zz',
        '400 malformed percent-encoding in the path: %zz',
      ],
    );
  });

  it('POST /v1/auditlogs is matched as written; other methods get 405 with the one served', () => {
    assert.deepEqual(
      [
        call('POST', '/v1/auditlogs/', '{}'),
        call('DELETE', '/v2/files/a'),
        call('PUT', '/v1/auditlogs'),
        call('PATCH', '/v2/batches'),
      ],
      [
        '404 no route for POST /v1/auditlogs/',
        '405 no route for DELETE /v2/files/a (allow HEAD)',
        '405 no route for PUT /v1/auditlogs (allow POST)',
        '405 no route for PATCH /v2/batches (allow GET)',
      ],
    );
  });
});

describe('sim deletions (SimData.remove)', () => {
  it('take batches and conversations out of listings, routes and ground truth, and bring none back', () => {
    const sim = new SimData({ ...data.opts, scale: { ...data.opts.scale, batches: 200, conversations: 40 } });
    const c = { data: sim, endless: () => 'off' as const, resources: SIM_RESOURCES };
    const get = (path: string, q = '') => {
      try {
        const reply = dispatch(c, 'GET', path, new URLSearchParams(q), '', t);
        return reply.kind === 'json' ? reply.body : reply;
      } catch (err) {
        if (err instanceof HttpError) return err.status;
        throw err;
      }
    };
    const listed = () => {
      const body = get('/v2/batches', 'limit=1000') as { batches: Array<{ id: number }> };
      return body.batches.map((b) => b.id);
    };
    const conversations = () =>
      (get('/v2/conversations') as { conversations: Array<{ id: string }> }).conversations.map((x) => x.id);
    assert.equal(listed().length, 200);
    sim.remove({ batches: 0.25, conversations: 0.5 });
    const left = listed();
    assert.ok(left.length > 120 && left.length < 180, `about a quarter gone: ${left.length} left`);
    assert.deepEqual(sim.expectedBatches(t).keys, left, 'the ground truth drops them too');
    const gone = Array.from({ length: 200 }, (_, i) => i + 1).filter((id) => !left.includes(id));
    assert.equal(get(`/v2/batches/${gone[0]}/files`), 404, "a deleted batch's files are gone with it");
    assert.notEqual(get(`/v2/batches/${left[0]}/files`), 404);
    const convs = conversations();
    assert.ok(convs.length > 8 && convs.length < 32, `about half the conversations left: ${convs.length}`);
    assert.deepEqual(sim.expectedConversations().keys, convs);
    const goneConv = Array.from({ length: 40 }, (_, i) => sim.conversationId(i)).find(
      (id) => !convs.includes(id),
    )!;
    assert.equal(get(`/v2/conversations/${goneConv}`), 404);
    // A smaller share later brings none back; a larger one deletes more, among them all deleted before.
    sim.remove({ batches: 0.1 });
    assert.deepEqual(listed(), left);
    sim.remove({ batches: 0.5 });
    const fewer = listed();
    assert.ok(fewer.length < left.length && fewer.every((id) => left.includes(id)));
    assert.throws(() => sim.remove({ conversations: 2 }), /between 0 and 1/);
  });
});

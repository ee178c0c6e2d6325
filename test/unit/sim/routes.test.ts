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

// The zod mirrors accept everything the OpenAPI contract allows (issue #11, part 1): values the contract
// permits but a JavaScript number or Date.parse cannot hold must validate, and clear violations must not.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { parseJson, walk } from '../../../producers/instabase/index.ts';
import { parseHeaderDate, parseRfc3339 } from '../../../producers/instabase/rfc3339.ts';
import * as s from '../../../producers/resources.ts';
import { DECLARATIONS, filesMetadata } from '../../../producers/resources.ts';
import type { ResourceDeclaration } from '../../../producers/follow/types.ts';
import { contentHash } from '../../../producers/content-hash.ts';
import type { Page } from '../../../producers/instabase/paginators.ts';
import { testClient, type TestClient } from './helpers.ts';

const D: Record<keyof typeof DECLARATIONS, ResourceDeclaration> = DECLARATIONS;

const ok = (schema: { safeParse(v: unknown): { success: boolean } }, json: string): boolean =>
  schema.safeParse(parseJson(json)).success;

describe('integers past 2^53 where the spec says `type: integer` without a format', () => {
  it('accepts bigint ids, batch_id, page numbers and record indexes', () => {
    const big = '9007199254740993';
    const huge = '123456789012345678901234567890';
    assert.ok(ok(s.batchInfo, `{"id":${big},"name":"b"}`), 'batch id');
    assert.ok(ok(s.batchInfo, `{"id":${huge},"name":"b"}`), 'batch id beyond int64 (no format: unbounded)');
    assert.ok(ok(s.run, `{"id":"r","batch_id":${big}}`), 'run batch_id');
    assert.ok(ok(s.documentDetails, `{"id":${big}}`), 'document id');
    assert.ok(ok(s.documentMetadataResponse, `{"id":${big}}`), 'document metadata id');
    assert.ok(ok(s.resultDocument, `{"page_numbers":[1,${big}]}`), 'page_numbers');
    assert.ok(ok(s.caseInputField, `{"record_index":${big}}`), 'record_index');
    assert.ok(ok(s.pageLayout, `{"page_number":${big},"width":1,"height":2}`), 'page_layouts.page_number');
  });

  it('still rejects fractions, strings and out-of-range int64 values', () => {
    assert.equal(ok(s.batchInfo, '{"id":1.5,"name":"b"}'), false);
    assert.equal(ok(s.batchInfo, '{"id":"1","name":"b"}'), false);
    assert.equal(ok(s.batchInfo, '{"id":1,"name":"b","created_at_ms":9223372036854775808}'), false);
    assert.ok(ok(s.batchInfo, '{"id":1,"name":"b","created_at_ms":-9223372036854775808}'));
    assert.ok(ok(s.batchInfo, '{"id":1,"name":"b","created_at_ms":-9007199254740991}'));
  });
});

describe('`type: number` written as a long integer literal', () => {
  it('accepts a page width of 10000000000000000 and confidences past 2^53', () => {
    assert.ok(ok(s.pageLayout, '{"page_number":0,"width":10000000000000000,"height":1.5}'));
    assert.ok(ok(s.fieldSourceCoordinates, '{"top_x":123456789012345678901234567890}'));
    assert.ok(ok(s.documentField, '{"confidence":{"model":10000000000000000,"ocr":null}}'));
    assert.equal(ok(s.pageLayout, '{"page_number":0,"width":"wide","height":1}'), false);
  });

  it('publishes such a width as its double in runs_results, the exact text staying in the object', () => {
    const file = parseJson(
      '{"documents":[{"page_layouts":[{"page_number":0,"width":10000000000000000,"height":2}],' +
        '"classification_confidence":{"model":10000000000000000}}]}',
    ) as Record<string, unknown>;
    const page = { pathParams: { run_id: 'r1' } } as unknown as Page<unknown>;
    const [shaped] = D.runs_results.shape!(file, page, 0);
    const layouts = shaped!.fields.page_layouts as Array<Record<string, unknown>>;
    assert.equal(layouts[0]!.width, 1e16);
    assert.equal(shaped!.fields.classification_confidence, 1e16);
    const object = shaped!.object as { page_layouts: Array<{ width: unknown }> };
    assert.equal(object.page_layouts[0]!.width, 10000000000000000n);
  });
});

describe('RFC 3339 date-times', () => {
  const valid: Array<[string, string]> = [
    ['2026-01-10T00:00:00Z', '2026-01-10T00:00:00.000Z'],
    ['2026-01-10t00:00:00z', '2026-01-10T00:00:00.000Z'],
    ['2026-01-10T01:30:00+01:30', '2026-01-10T00:00:00.000Z'],
    ['2026-01-09T19:00:00.123456789-05:00', '2026-01-10T00:00:00.123Z'],
    ['2016-12-31T23:59:60Z', '2017-01-01T00:00:00.000Z'],
    ['2016-12-31t23:59:60.5z', '2017-01-01T00:00:00.500Z'],
    ['2016-12-31T15:59:60-08:00', '2017-01-01T00:00:00.000Z'],
    ['2024-02-29T12:00:00-00:00', '2024-02-29T12:00:00.000Z'],
  ];
  for (const [text, iso] of valid) {
    it(`accepts ${text}`, () => {
      assert.equal(new Date(parseRfc3339(text)!).toISOString(), iso);
      assert.ok(s.documentDetails.safeParse({ id: 1, uploadTimestamp: text }).success);
    });
  }

  it('reads years 0000-0099 as themselves, not as 1900-1999', () => {
    assert.equal(parseRfc3339('0001-01-01T00:00:00Z'), -62135596800000);
    assert.equal(parseRfc3339('0000-01-01T00:00:00Z'), -62167219200000);
    assert.equal(parseRfc3339('9999-12-31T23:59:59.999Z'), 253402300799999);
  });

  for (const text of [
    '2026-01-10 00:00:00Z',
    '2026-01-10T00:00:00',
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-01-10T24:00:00Z',
    '2026-01-10T12:59:60Z',
    '2026-01-10T00:00:00+0100',
    '2026-1-10T00:00:00Z',
    'not a date',
  ]) {
    it(`rejects ${text}`, () => {
      assert.equal(parseRfc3339(text), null);
      assert.equal(s.documentDetails.safeParse({ id: 1, uploadTimestamp: text }).success, false);
    });
  }

  it('conversation documents get uploadTimestamp_ms from every RFC 3339 form', () => {
    const page = { pathParams: { conversation_id: 'c1' } } as unknown as Page<unknown>;
    const [shaped] = D.conversation_documents.shape!(
      { id: 1, uploadTimestamp: '2016-12-31t23:59:60z' },
      page,
      0,
    );
    assert.equal(shaped!.fields.uploadTimestamp_ms, Date.UTC(2017, 0, 1));
  });
});

describe('HEAD last-modified (spec: date-time, "or http-date")', () => {
  it('reads RFC 3339 with a leap second or lowercase letters, and the three HTTP-date forms', () => {
    assert.equal(parseHeaderDate('2016-12-31T23:59:60Z'), Date.UTC(2017, 0, 1));
    assert.equal(parseHeaderDate('2026-01-09t10:00:00z'), Date.UTC(2026, 0, 9, 10));
    assert.equal(parseHeaderDate('Fri, 09 Jan 2026 10:00:00 GMT'), Date.UTC(2026, 0, 9, 10));
    assert.equal(parseHeaderDate('Sunday, 06-Nov-94 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHeaderDate('Sun Nov  6 08:49:37 1994'), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHeaderDate('yesterday-ish'), null);
    assert.equal(parseHeaderDate('2026-01-09'), null);
  });

  let t: TestClient | undefined;
  afterEach(async () => {
    await t?.agent.close();
    t = undefined;
  });

  it('a file whose last-modified has a leap second is a valid record, not a dead letter', async () => {
    t = testClient();
    const { client, pool } = t;
    pool.intercept({ path: '/api/v2/files/org/a.pdf', method: 'HEAD' }).reply(200, '', {
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': '10',
        'last-modified': '2016-12-31T23:59:60Z',
      },
    });
    const pages = [];
    for await (const p of walk(client, filesMetadata, { pathParams: { path: 'org/a.pdf' } })) pages.push(p);
    assert.equal(pages[0]!.invalid.length, 0);
    assert.equal(pages[0]!.records[0]!.last_modified_ms, Date.UTC(2017, 0, 1));
  });
});

describe('records without an id (the spec does not require one on runs and documents)', () => {
  const page = { pathParams: { conversation_id: 'c1' } } as unknown as Page<unknown>;

  it('validate', () => {
    assert.ok(s.run.safeParse({ status: 'COMPLETE' }).success);
    assert.ok(s.documentDetails.safeParse({ name: 'd.pdf' }).success);
  });

  it('a run without id is keyed by its content hash; with an id, by the id', () => {
    const run = { status: 'COMPLETE', start_timestamp: 1700000000000000000n };
    assert.equal(D.runs.key(run, page), contentHash(run));
    assert.equal(D.runs.key({ ...run, id: 'r1' }, page), 'r1');
    assert.equal(D.runs.key({ ...run, id: null }, page), contentHash({ ...run, id: null }));
  });

  it('a document without id is keyed by its conversation and its content hash', () => {
    const doc = { name: 'd.pdf', state: 'PROCESSED' };
    const [shaped] = D.conversation_documents.shape!(doc, page, 0);
    assert.equal(shaped!.key, JSON.stringify(['c1', contentHash(doc)]));
    assert.equal(shaped!.fields.conversation_id, 'c1');
    const [withId] = D.conversation_documents.shape!({ ...doc, id: 7 }, page, 0);
    assert.equal(withId!.key, JSON.stringify(['c1', '7']));
  });
});

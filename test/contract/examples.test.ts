// Every example in both spec files must parse with the client's zod schemas: they are the only real
// responses Instabase publishes, so a schema that rejects one is wrong.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { schemas as s } from '../../producers/instabase/index.ts';
import * as r from '../../producers/resources.ts';
import { Contract, SPEC_FILES, describeErrors, findExamples, type FoundExample } from './openapi.ts';

/** zod mirror of each operation's 200 response, by operationId. */
const RESPONSES: Record<string, z.ZodType> = {
  listBatches: r.listBatchesResponse,
  listFiles: r.listBatchFilesResponse,
  listRuns: r.listRunsResponse,
  getRunStatus: r.run,
  getRunResults: r.resultsResponse,
  listConversations: r.listConversationsResponse,
  getConversation: r.conversation,
  getConversationDocumentMetadata: r.documentMetadataResponse,
  getQueryStatus: r.queryStatusResponse,
  getAuditLogs: r.auditLogsResponse,
};

/** zod mirror of each component schema an example can sit in. */
const COMPONENTS: Record<string, z.ZodType> = {
  batch: s.batch,
  batchInfo: r.batchInfo,
  run: r.run,
  resultsResponse: r.resultsResponse,
  listBatchFilesResponse: r.listBatchFilesResponse,
  multipartUploadSessionResponse: s.multipartUploadSessionResponse,
  queryStatusResponse: r.queryStatusResponse,
  documentMetadataResponse: r.documentMetadataResponse,
  conversation: r.conversation,
  conversationSummary: r.conversationSummary,
};

/** Follows `properties/<name>` and `items` from a zod schema, as the pointer does in the OpenAPI schema. */
function descend(schema: z.ZodType, pointer: (string | number)[]): z.ZodType {
  let cur: z.ZodType = schema;
  for (let i = 0; i < pointer.length; i++) {
    while (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as z.ZodType;
    const seg = pointer[i];
    if (seg === 'properties' && cur instanceof z.ZodObject)
      cur = cur.shape[String(pointer[++i])] as z.ZodType;
    else if (seg === 'items' && cur instanceof z.ZodArray) cur = cur.element as z.ZodType;
    else throw new Error(`cannot follow ${pointer.join('/')} at ${String(seg)}`);
    if (!cur) throw new Error(`zod schema has no ${pointer.slice(0, i + 1).join('/')}`);
  }
  return cur;
}

/** The zod schema an example is an example of. */
function zodFor(contract: Contract, ex: FoundExample): z.ZodType {
  const at = ex.at;
  if (at[0] === 'components' && at[1] === 'schemas') {
    const base = COMPONENTS[String(at[2])];
    if (!base) throw new Error(`no zod mirror of component ${String(at[2])}`);
    return descend(base, at.slice(3, -1));
  }
  if (at[0] === 'paths') {
    const op = contract.operation(ex.file, String(at[2]), String(at[1]));
    const base = RESPONSES[op.operationId];
    if (!base) throw new Error(`no zod mirror of ${op.operationId}'s response`);
    if (at.includes('x-fern-examples')) return base;
    const schemaAt = at.indexOf('schema');
    return schemaAt < 0 ? base : descend(base, at.slice(schemaAt + 1, -1));
  }
  throw new Error(`example at an unexpected place: ${at.join('/')}`);
}

describe('spec examples', () => {
  const contract = new Contract();
  const all = SPEC_FILES.flatMap((f) => findExamples(f, contract.docs.get(f)!));

  it('finds the examples of both files', () => {
    assert.ok(all.filter((e) => e.file === 'openapi.yaml').length >= 5);
    assert.ok(
      all.some((e) => e.file === 'openapi-2026-01-15.yaml' && e.at.includes('/v2/queries/{query_id}')),
    );
  });

  for (const ex of all) {
    it(`${ex.file} ${ex.at.join('/')} parses with zod`, () => {
      const r = zodFor(contract, ex).safeParse(ex.value);
      assert.ok(r.success, r.success ? '' : JSON.stringify(r.error.issues));
    });
  }

  it('keeps nanosecond timestamps exact and unknown fields present', () => {
    const ex = all.find((e) => e.file === 'openapi.yaml' && e.at.includes('x-fern-examples'))!;
    const parsed = r.resultsResponse.parse(ex.value);
    assert.equal(parsed.start_timestamp, 1765912514238248673n);
    assert.equal(parsed.finish_timestamp, 1765912529614833939n);
  });

  // The spec disagrees with itself in one place; this pins it so a fixed spec is noticed.
  it('only the known spec inconsistency fails the spec’s own schemas (results `keys` given as a list)', () => {
    const failures: string[] = [];
    for (const ex of all.filter((e) => e.at.includes('x-fern-examples'))) {
      const op = contract.operation(ex.file, String(ex.at[2]), String(ex.at[1]));
      const validate = contract.responseValidator(ex.file, op.method, op.path, '200');
      if (
        !validate(
          JSON.parse(JSON.stringify(ex.value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))),
        )
      ) {
        failures.push(`${ex.file} ${op.operationId} ${String(ex.at[4])}: ${describeErrors(validate.errors)}`);
      }
    }
    assert.deepEqual(failures, [
      'openapi.yaml getRunResults 0: /keys must be object',
      'openapi-2026-01-15.yaml getRunResults 0: /keys must be object',
    ]);
  });
});

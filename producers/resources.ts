import type { ResourceName } from '../core/resources.ts';
import { entityKey } from '../schemas/index.ts';
import { contentHash } from './content-hash.ts';
import type { ApiRecord, ResourceDeclaration } from './follow/types.ts';
import * as endpoints from './instabase/endpoints.ts';
import type { Page } from './instabase/paginators.ts';
import type { ResourceSpec } from './instabase/resource.ts';
import { parseRfc3339 } from './instabase/rfc3339.ts';

/** Epoch ms from a timestamp the API sends as text: digits are ms, anything else is parsed as a date. */
export function textToMs(text: unknown): number | null {
  if (typeof text !== 'string' || text.trim() === '') return null;
  if (/^-?\d+$/.test(text.trim())) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : null;
  }
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** Epoch ms of an RFC 3339 `format: date-time` string (leap seconds, lowercase t/z); null otherwise. */
export function dateTimeToMs(text: unknown): number | null {
  return typeof text === 'string' ? parseRfc3339(text) : null;
}

/**
 * A `type: number` value as a double. The lossless parser keeps a long integer literal (a page width of
 * 10000000000000000) as bigint; a double field holds its nearest double, and `_raw_json` the exact text.
 */
function toDouble(v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

/**
 * The run-level part of a results page (everything but `files`), carried on each document of the run as
 * `run_*` fields: the Avro schema takes those it declares, and `case_info` and `keys.custom`, being
 * objects, become JSON text in a string field. `keys` is an object in the schema and a list in the
 * spec's first example; both are read.
 */
function runEnvelope(meta: Record<string, unknown> | undefined): ApiRecord {
  const m = obj(meta);
  const keys = Array.isArray(m.keys) ? (m.keys as unknown[]).map((k) => obj(k).custom) : obj(m.keys).custom;
  return {
    run_status: m.status,
    run_message: m.message,
    run_batch_id: m.batch_id,
    run_review_completed: m.review_completed,
    run_keys_custom: keys,
    run_case_info: m.case_info,
  };
}

const hasId = (r: ApiRecord): boolean => r.id !== undefined && r.id !== null;

/**
 * The spec does not require `id` on runs and documents. A record without one has no identity across
 * versions, so, like an audit entry, it is keyed by its content hash: it still flows, and an identical
 * copy is the same record.
 */
function keyOrContentHash(resource: 'runs' | 'conversation_documents', r: ApiRecord, scope?: string): string {
  if (hasId(r)) return entityKey(resource, scope === undefined ? r : { ...r, conversation_id: scope });
  return scope === undefined ? contentHash(r) : JSON.stringify([scope, contentHash(r)]);
}

const obj = (v: unknown): ApiRecord =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as ApiRecord) : {};
const list = (v: unknown): ApiRecord[] => (Array.isArray(v) ? (v as ApiRecord[]) : []);
const param = (page: Page<unknown>, name: string): string => String(page.pathParams[name]);
// The engines see records as plain objects; each spec's zod schema has already validated them.
const spec = <R>(s: ResourceSpec<R>): ResourceSpec<unknown> => s as unknown as ResourceSpec<unknown>;

/** The {batch_id} of a batch files page as the integer it is (a bigint past 2^53, as the batch's id). */
function batchIdOf(page: Page<unknown>): number | bigint {
  const id = page.pathParams.batch_id;
  if (typeof id === 'number' || typeof id === 'bigint') return id;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : BigInt(String(id));
}

/** Unix seconds (`type: integer`) as ms, exact past 2^53; anything else is left for the mapper. */
function secondsToMs(v: unknown): unknown {
  if (typeof v === 'bigint') return v * 1000n;
  if (typeof v !== 'number' || !Number.isInteger(v)) return v;
  const ms = v * 1000;
  return Number.isSafeInteger(ms) ? ms : BigInt(v) * 1000n;
}

/**
 * A batch file is its full_path within its batch. The spec requires no field of a node, so one without
 * a full_path is keyed, like an id-less document, by its batch and its content hash.
 */
function batchFileKey(r: ApiRecord, page: Page<unknown>): string {
  const batchId = batchIdOf(page);
  if (typeof r.full_path === 'string')
    return entityKey('batch_files', { batch_id: batchId, full_path: r.full_path });
  return JSON.stringify([String(batchId), contentHash(r)]);
}

/**
 * The resources as a table: endpoint, paginator and data selector come from the client's spec;
 * the key, the shape (API object → Avro fields) and the page cap of one walk (./follow/page-budget.ts;
 * 10,000 pages of 100 batches or runs, 100,000 pages of audit entries per time window) are here. How each is followed incrementally is
 * chosen by its poll job (./jobs.ts).
 */
export const DECLARATIONS = {
  conversations: {
    name: 'conversations',
    spec: spec(endpoints.conversations),
    key: (r) => entityKey('conversations', r),
  },
  conversation_documents: {
    name: 'conversation_documents',
    spec: spec(endpoints.conversationDocuments),
    key: (r, page) => keyOrContentHash('conversation_documents', r, param(page, 'conversation_id')),
    shape(r, page) {
      const conversationId = param(page, 'conversation_id');
      const fields = {
        ...r,
        conversation_id: conversationId,
        uploadTimestamp_ms: dateTimeToMs(r.uploadTimestamp),
      };
      return [{ key: keyOrContentHash('conversation_documents', r, conversationId), fields, object: r }];
    },
  },
  conversation_document_metadata: {
    name: 'conversation_document_metadata',
    spec: spec(endpoints.conversationDocumentMetadata),
    key: (r, page) =>
      entityKey('conversation_document_metadata', { ...r, conversation_id: param(page, 'conversation_id') }),
    shape(r, page) {
      const fields = {
        ...r,
        conversation_id: param(page, 'conversation_id'),
        id: r.id ?? page.pathParams.document_id,
      };
      return [{ key: entityKey('conversation_document_metadata', fields), fields, object: r }];
    },
  },
  batches: {
    name: 'batches',
    spec: spec(endpoints.batches),
    maxPages: 10_000,
    key: (r) => entityKey('batches', r),
  },
  batch_files: {
    name: 'batch_files',
    spec: spec(endpoints.batchFiles),
    maxPages: 10_000,
    key: (r, page) => batchFileKey(r, page),
    shape(r, page) {
      const metadata = obj(r.metadata);
      const perms = obj(r.perms);
      const fields = {
        batch_id: batchIdOf(page),
        full_path: r.full_path,
        name: r.name,
        node_type: metadata.node_type,
        size: metadata.size,
        modified_timestamp: metadata.modified_timestamp,
        modified_timestamp_ms: secondsToMs(metadata.modified_timestamp),
        can_read: perms.can_read,
        can_write: perms.can_write,
        can_delete: perms.can_delete,
      };
      return [{ key: batchFileKey(r, page), fields, object: r }];
    },
  },
  runs: {
    name: 'runs',
    spec: spec(endpoints.runs),
    maxPages: 10_000,
    key: (r) => keyOrContentHash('runs', r),
  },
  runs_results: {
    name: 'runs_results',
    spec: spec(endpoints.runsResults),
    maxPages: 10_000,
    key: () => {
      throw new Error('runs_results records are keyed per document by shape()');
    },
    // One record per document: the file is the API's unit of paging, the document the unit of analysis.
    shape(file, page, fileIndex) {
      const runId = param(page, 'run_id');
      const run = runEnvelope(page.meta);
      return list(file.documents).map((doc, documentIndex) => {
        const fields = {
          ...run,
          run_id: runId,
          file_index: fileIndex,
          document_index: documentIndex,
          original_file_name: file.original_file_name,
          input_file_path: file.input_file_path,
          class_name: doc.class_name,
          review_completed: doc.review_completed,
          final_result_pass: obj(doc.validations).final_result_pass,
          classification_confidence: toDouble(obj(doc.classification_confidence).model),
          page_numbers: doc.page_numbers,
          post_processed_paths: doc.post_processed_paths,
          post_processed_pdf_path: doc.post_processed_pdf_path,
          page_layouts: list(doc.page_layouts).map((l) => ({
            ...l,
            width: toDouble(l.width),
            height: toDouble(l.height),
          })),
          fields: list(doc.fields).map((f) => ({
            name: f.field_name,
            value: f.value,
            type: f.type,
            confidence: toDouble(obj(f.confidence).model),
            ocr_confidence: toDouble(obj(f.confidence).ocr),
            error: f.error_msg,
            valid: obj(f.validations).valid,
          })),
        };
        return { key: entityKey('runs_results', fields), fields, object: doc };
      });
    },
  },
  queries_status: {
    name: 'queries_status',
    spec: spec(endpoints.queriesStatus),
    key: (r) => entityKey('queries_status', r),
    shape(r, page) {
      const fields = {
        ...r,
        query_id: r.query_id ?? param(page, 'query_id'),
        results: list(r.results).map((q) => ({
          response: q.response,
          source_document_names: list(q.source_documents).map((d) => d.name),
        })),
      };
      return [{ key: entityKey('queries_status', fields), fields, object: r }];
    },
  },
  files_metadata: {
    name: 'files_metadata',
    spec: spec(endpoints.filesMetadata),
    key: (r) => entityKey('files_metadata', r),
    shape(r) {
      const fields = {
        path: r.path,
        http_status: r.exists ? 200 : 404,
        present: r.exists,
        kind: r.type,
        content_type: r.content_type,
        size: r.content_length,
        last_modified: r.last_modified,
        last_modified_ms: r.last_modified_ms,
      };
      return [{ key: entityKey('files_metadata', fields), fields, object: r }];
    },
  },
  audit_logs: {
    name: 'audit_logs',
    spec: spec(endpoints.auditLogs),
    maxPages: 100_000,
    // Entries have no id: identical entries are the same event, so the content hash is the key.
    key: (r) => contentHash(r),
    shape(r) {
      return [
        { key: contentHash(r), fields: { ...r, timestamp_ms: textToMs(r.timestamp_millis) }, object: r },
      ];
    },
  },
} satisfies { [K in ResourceName]: ResourceDeclaration & { name: K } };

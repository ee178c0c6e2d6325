import type { Config } from '../core/config.ts';
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { entityKey } from '../schemas/index.ts';
import { contentHash } from './content-hash.ts';
import type { EntityState } from './follow/changes.ts';
import { stateKey } from './follow/state-keys.ts';
import type { ApiRecord, EngineContext, ResourceDeclaration } from './follow/types.ts';
import * as endpoints from './instabase/endpoints.ts';
import type { Page, WalkParams } from './instabase/paginators.ts';
import type { ResourceSpec } from './instabase/resource.ts';
import { parseRfc3339 } from './instabase/rfc3339.ts';
import { TERMINAL_RUN_STATUSES } from './instabase/schemas.ts';

type Knobs = Config['producers'];

/** A number of the `producers` config (core/config.ts) that a resource reads, named as the config names it. */
export type NumberKnob = { [K in keyof Knobs]-?: Knobs[K] extends number ? K : never }[keyof Knobs];

/** How a resource is followed incrementally: one of the strategies of ./follow/. */
export type Follow =
  /**
   * The whole listing on every poll, publishing what changed by content hash; a record missing from two
   * consecutive complete walks gets a tombstone (./follow/changes.ts). A child is walked once per parent
   * record, before the parent's page is published; a grandchild once per child record, its tombstones
   * concluded only once every child record of the root's record was read.
   */
  | {
      kind: 'changes';
      pageSize?: NumberKnob;
      /** How the page budget learns (./follow/page-budget.ts): `max` when walks per parent differ in size. */
      budget?: 'max';
      /**
       * A text field of the record that only a child's page envelope carries (a conversation's `state`, in
       * its detail): copied into the record, or kept from its last version when the child was not read.
       */
      fromChild?: { resource: ResourceName; field: string };
    }
  /**
   * Listed by a time window [watermark - lookback, now]; records that can still change are re-read by key
   * until they are terminal (./follow/entity-window.ts).
   */
  | {
      kind: 'entity-window';
      bounds(fromMs: number, toMs: number, knobs: Knobs): WalkParams['query'];
      byKey(key: string): WalkParams['query'];
      isOpen(record: ApiRecord): boolean;
      /** Whether the record's `ready-children` child is due (only asked when that child is polled). */
      isReady(record: ApiRecord): boolean;
      timeMs(record: ApiRecord, now: () => number): number;
      lookbackMs: NumberKnob;
    }
  /**
   * A child walked once per version of each parent record its parent marked ready, resuming at the
   * checkpointed page (./follow/entity-window.ts, walkReadyChildren).
   */
  | { kind: 'ready-children' }
  /**
   * Ids tracked in the state (from config or a topic), each polled into `pathParam` until the endpoint's
   * `terminal` declaration says it is final (./follow/tracked.ts).
   */
  | { kind: 'tracked'; pathParam: string }
  /** One request per path, each published when it changes; no tombstones (HEAD /v2/files/{path}). */
  | { kind: 'head-per-path'; pathParam: string; paths(ctx: EngineContext): string[] }
  /**
   * Append-only: settled time windows [start, end], each walked once, resuming inside a window after a
   * restart (./follow/append-window.ts). Its topic is the one kind of resource with delete retention
   * (schemas/index.ts RESOURCE_META `kind: 'append'`; core/topics.ts).
   */
  | {
      kind: 'append-window';
      bounds(
        startMs: number,
        endMs: number,
      ): { body?: Record<string, unknown>; query?: Record<string, string> };
      settleMs: NumberKnob;
      pageSize: NumberKnob;
    };

/**
 * Everything the producers know of a resource: the endpoint (its paginator, data selector and, for a
 * child, the parent whose records fill its path), the key and shape of its records, and how it is
 * followed. A resource without `spec.parent` is a root: one poll job walks it and its descendants.
 */
export interface Declaration<K extends ResourceName = ResourceName> extends ResourceDeclaration {
  name: K;
  follow: Follow;
  /**
   * A child's parent record → the id its walk is for, which fills the endpoint's path parameters
   * (`spec.parent.pathParams`); undefined: no walk for that record. Records that break the contract
   * count too, so their valid children are not lost.
   */
  parentId?: (record: ApiRecord) => string | number | bigint | undefined;
  /** A child walked only when `producers.resources` lists it; otherwise it always comes with its parent. */
  optional?: boolean;
}

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

/** A non-empty string id (a conversation's). */
const stringId = (r: ApiRecord): string | undefined =>
  typeof r.id === 'string' && r.id !== '' ? r.id : undefined;

/** An integer id as it came (a bigint past 2^53): a batch that breaks the contract still has files. */
const integerId = (r: ApiRecord): number | bigint | undefined =>
  (typeof r.id === 'number' && Number.isInteger(r.id)) || typeof r.id === 'bigint' ? r.id : undefined;

const terminalRunStatuses: readonly string[] = TERMINAL_RUN_STATUSES;

/**
 * The paths files_metadata HEADs: the configured list, and with `filesFromBatchFiles` every full_path
 * batch_files has published and not tombstoned (its state, kept for tombstones, holds the fields).
 * Batch files name a path with a leading '/', which the path template already has.
 */
export function filesMetadataPaths(ctx: EngineContext): string[] {
  const p = ctx.config.producers;
  const paths = new Set(p.files);
  if (p.filesFromBatchFiles) {
    for (const [, entity] of ctx.state.entries<EntityState>(stateKey('batch_files', undefined, ''))) {
      const path = entity.f?.full_path;
      if (typeof path === 'string' && path.replace(/^\/+/, '') !== '') paths.add(path.replace(/^\/+/, ''));
    }
  }
  return [...paths];
}

/**
 * The resources as a table, one declaration each (a resource missing here does not compile): endpoint,
 * paginator, data selector and parent come from the client's spec; the key, the shape (API object → Avro
 * fields), the page cap of one walk (./follow/page-budget.ts; 10,000 pages of 100 batches or runs,
 * 100,000 pages of audit entries per time window), how it is followed and the config knobs it reads are
 * here. ./jobs.ts turns each root into a poll job.
 */
export const DECLARATIONS = {
  conversations: {
    name: 'conversations',
    spec: spec(endpoints.conversations),
    key: (r) => entityKey('conversations', r),
    follow: { kind: 'changes', fromChild: { resource: 'conversation_documents', field: 'state' } },
  },
  conversation_documents: {
    name: 'conversation_documents',
    spec: spec(endpoints.conversationDocuments),
    follow: { kind: 'changes' },
    parentId: stringId,
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
    follow: { kind: 'changes' },
    // A document without an integer id (the spec requires none) has no metadata endpoint to ask.
    parentId: (r) => (typeof r.id === 'number' || typeof r.id === 'bigint' ? String(r.id) : undefined),
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
    follow: { kind: 'changes', pageSize: 'batchesPageSize' },
  },
  batch_files: {
    name: 'batch_files',
    spec: spec(endpoints.batchFiles),
    maxPages: 10_000,
    // Batches differ in size: the page budget follows the largest complete walk.
    follow: { kind: 'changes', pageSize: 'batchFilesPageSize', budget: 'max' },
    parentId: integerId,
    optional: true,
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
    follow: {
      kind: 'entity-window',
      bounds: (from, to, knobs) => ({
        from_timestamp: Math.floor(from / 1000),
        to_timestamp: Math.ceil(to / 1000),
        limit: knobs.runsPageSize,
      }),
      byKey: (id) => ({ run_id: id }),
      // A run without an id (the spec does not require one) cannot be re-read or asked for results.
      isOpen: (r) => r.id != null && !terminalRunStatuses.includes(String(r.status)),
      isReady: (r) => r.id != null && r.status === 'COMPLETE',
      // Run timestamps are Unix nanoseconds, past 2^53: they arrive as bigint.
      timeMs: (r, now) =>
        r.start_timestamp == null ? now() : Number(BigInt(r.start_timestamp as bigint | number) / 1_000_000n),
      lookbackMs: 'runsLookbackMs',
    },
  },
  runs_results: {
    name: 'runs_results',
    spec: spec(endpoints.runsResults),
    maxPages: 10_000,
    follow: { kind: 'ready-children' },
    optional: true,
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
    follow: { kind: 'tracked', pathParam: 'query_id' },
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
    follow: { kind: 'head-per-path', pathParam: 'path', paths: filesMetadataPaths },
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
    follow: {
      kind: 'append-window',
      bounds: (start, end) => ({ body: { start_time: String(start), end_time: String(end) } }),
      settleMs: 'auditLogsSettleMs',
      pageSize: 'auditLogsPageSize',
    },
    // Entries have no id: identical entries are the same event, so the content hash is the key.
    key: (r) => contentHash(r),
    shape(r) {
      return [
        { key: contentHash(r), fields: { ...r, timestamp_ms: textToMs(r.timestamp_millis) }, object: r },
      ];
    },
  },
} satisfies { [K in ResourceName]: Declaration<K> };

const ALL: readonly Declaration[] = RESOURCE_NAMES.map((name) => DECLARATIONS[name]);

/** The resources whose endpoint is filled from records of `name`, in the order of core/resources.ts. */
export const childrenOf = (name: ResourceName): Declaration[] =>
  ALL.filter((d) => d.spec.parent?.resource === name);

/** The resources that are walked on their own, each by one poll job. */
export const ROOTS: readonly Declaration[] = ALL.filter((d) => d.spec.parent === undefined);

/** A resource's descendants, depth first. */
export const descendantsOf = (name: ResourceName): Declaration[] =>
  childrenOf(name).flatMap((child) => [child, ...descendantsOf(child.name)]);

/** Children poll with their root: the job of a root resource walks its whole tree. */
export const JOB_RESOURCES: Readonly<Record<string, ResourceName[]>> = Object.fromEntries(
  ROOTS.map((root) => [root.name, [root.name, ...descendantsOf(root.name).map((d) => d.name)]]),
);

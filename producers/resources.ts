// One declaration per resource: everything the producers know of it, in one section of this file. The
// endpoints' paths, parameters and record shapes were checked against vendor/instabase-api (openapi.yaml;
// conversations and queries: openapi-2026-01-15.yaml, and openapi.yaml wins where both describe a schema).
// The zod mirrors are loose objects, so a field Instabase adds tomorrow is kept for the dead letter and
// the raw column, not stripped; properties the spec does not require are optional, `nullable: true` is
// `.nullable()`. Building blocks shared by several resources are in ./instabase/schemas.ts.
import { z } from 'zod';
import type { Config } from '../core/config.ts';
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { entityKey } from '../schemas/index.ts';
import { contentHash } from './content-hash.ts';
import type { EntityState } from './follow/changes.ts';
import { stateKey } from './follow/state-keys.ts';
import { WalkKeys } from './follow/walk-keys.ts';
import type { ApiRecord, EngineContext, ResourceDeclaration } from './follow/types.ts';
import type { Page, WalkParams } from './instabase/paginators.ts';
import type { ResourceSpec } from './instabase/resource.ts';
import { parseRfc3339 } from './instabase/rfc3339.ts';
import {
  fileMetadata,
  modificationObject,
  opt,
  optNull,
  zDateTime,
  zInt64,
  zInteger,
  zNumber,
} from './instabase/schemas.ts';

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
  | { kind: 'head-per-path'; pathParam: string; paths(ctx: EngineContext): AsyncIterable<string> }
  /**
   * Append-only: settled time windows [start, end], each walked once, resuming inside a window after a
   * restart (./follow/append-window.ts). Its topic is the one kind of resource with delete retention
   * (core/resources.ts RESOURCE_META `kind: 'append'`; core/topics.ts).
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
  /**
   * Paths this resource's published records name that files_metadata HEADs too, beside
   * `producers.files`, while `when` holds; read from the state, which keeps each record's fields for
   * its tombstone. In a producers group the HEAD-per-path root then runs in this resource's root's unit,
   * whose state it reads (../producers/work-units.ts).
   */
  headPaths?: { when: (config: Config) => boolean; paths: (ctx: EngineContext) => AsyncIterable<string> };
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
const openObject = z.looseObject({});
// The engines see records as plain objects; each spec's zod schema has already validated them.
const spec = <R>(s: ResourceSpec<R>): ResourceSpec<unknown> => s as unknown as ResourceSpec<unknown>;

// conversations ---------------------------------------------------------------------------------------------

export const conversationSummary = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: opt(z.string()),
});

export const listConversationsResponse = z.looseObject({ conversations: opt(z.array(conversationSummary)) });

export const conversations = {
  name: 'conversations',
  method: 'GET',
  path: '/v2/conversations',
  paginator: { kind: 'none' },
  dataSelector: 'conversations',
  dataOptional: true,
  record: conversationSummary,
  envelope: openObject,
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'listConversations' },
} as const satisfies ResourceSpec<z.infer<typeof conversationSummary>>;

const conversationsDeclaration = {
  name: 'conversations',
  spec: spec(conversations),
  key: (r) => entityKey('conversations', r),
  follow: { kind: 'changes', fromChild: { resource: 'conversation_documents', field: 'state' } },
} satisfies Declaration<'conversations'>;

// conversation_documents ------------------------------------------------------------------------------------

export const documentDetails = z.looseObject({
  id: opt(zInteger),
  name: opt(z.string()),
  state: opt(z.string()),
  uploadTimestamp: opt(zDateTime),
});

export const conversationEnvelope = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: opt(z.string()),
  state: z.string(),
});

export const conversation = conversationEnvelope.extend({ documents: opt(z.array(documentDetails)) });

/** A non-empty string id (a conversation's). */
const stringId = (r: ApiRecord): string | undefined =>
  typeof r.id === 'string' && r.id !== '' ? r.id : undefined;

/** GET /v2/conversations/{id}: the documents are the records; the conversation itself is the page meta. */
export const conversationDocuments = {
  name: 'conversation_documents',
  method: 'GET',
  path: '/v2/conversations/{conversation_id}',
  paginator: { kind: 'none' },
  dataSelector: 'documents',
  dataOptional: true,
  record: documentDetails,
  envelope: conversationEnvelope,
  parent: { resource: 'conversations', pathParams: { conversation_id: 'id' } },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getConversation' },
} as const satisfies ResourceSpec<z.infer<typeof documentDetails>>;

const conversationDocumentsDeclaration = {
  name: 'conversation_documents',
  spec: spec(conversationDocuments),
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
} satisfies Declaration<'conversation_documents'>;

// conversation_document_metadata ----------------------------------------------------------------------------

export const documentMetadataResponse = z.looseObject({
  id: opt(zInteger),
  ibdoc_path: opt(z.string()),
  name: opt(z.string()),
  metadata: opt(z.array(z.looseObject({}))),
});

export const conversationDocumentMetadata = {
  name: 'conversation_document_metadata',
  method: 'GET',
  path: '/v2/conversations/{conversation_id}/documents/{document_id}',
  paginator: { kind: 'single' },
  dataSelector: '',
  record: documentMetadataResponse,
  parent: {
    resource: 'conversation_documents',
    pathParams: { conversation_id: '^conversation_id', document_id: 'id' },
  },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getConversationDocumentMetadata' },
} as const satisfies ResourceSpec<z.infer<typeof documentMetadataResponse>>;

const conversationDocumentMetadataDeclaration = {
  name: 'conversation_document_metadata',
  spec: spec(conversationDocumentMetadata),
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
} satisfies Declaration<'conversation_document_metadata'>;

// batches ---------------------------------------------------------------------------------------------------

export const batchInfo = z.looseObject({
  id: zInteger,
  name: z.string(),
  workspace: opt(z.string()),
  mount_point: opt(z.string()),
  repo_owner: opt(z.string()),
  batch_owner: opt(z.string()),
  created_at_ms: opt(zInt64),
  updated_at_ms: opt(zInt64),
  path_suffix: opt(z.string()),
});

export const listBatchesResponse = z.looseObject({ batches: opt(z.array(batchInfo)) });

export const batches = {
  name: 'batches',
  method: 'GET',
  path: '/v2/batches',
  paginator: { kind: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: 100 },
  dataSelector: 'batches',
  dataOptional: true,
  record: batchInfo,
  envelope: openObject,
  contract: { file: 'openapi.yaml', operationId: 'listBatches' },
} as const satisfies ResourceSpec<z.infer<typeof batchInfo>>;

const batchesDeclaration = {
  name: 'batches',
  spec: spec(batches),
  maxPages: 10_000,
  key: (r) => entityKey('batches', r),
  follow: { kind: 'changes', pageSize: 'batchesPageSize' },
} satisfies Declaration<'batches'>;

// batch_files -----------------------------------------------------------------------------------------------

/** One node of GET /v2/batches/{batch_id}/files (listBatchFilesResponse.nodes[]): nothing is required. */
export const batchFileNode = z.looseObject({
  full_path: opt(z.string()),
  metadata: opt(
    z.looseObject({
      node_type: opt(z.string()),
      size: opt(zInteger),
      modified_timestamp: opt(zInteger),
    }),
  ),
  perms: opt(
    z.looseObject({
      can_read: opt(z.boolean()),
      can_write: opt(z.boolean()),
      can_delete: opt(z.boolean()),
    }),
  ),
  name: opt(z.string()),
});

/** The rest of a batch files page: the paging fields. */
export const batchFilesEnvelope = z.looseObject({
  next_page_token: opt(z.string()),
  has_more: opt(z.boolean()),
});

export const listBatchFilesResponse = batchFilesEnvelope.extend({ nodes: opt(z.array(batchFileNode)) });

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

/** An integer id as it came (a bigint past 2^53): a batch that breaks the contract still has files. */
const integerId = (r: ApiRecord): number | bigint | undefined =>
  (typeof r.id === 'number' && Number.isInteger(r.id)) || typeof r.id === 'bigint' ? r.id : undefined;

/** A batch's files: paged by the token each page hands over while has_more is true. */
export const batchFiles = {
  name: 'batch_files',
  method: 'GET',
  path: '/v2/batches/{batch_id}/files',
  paginator: {
    kind: 'token',
    tokenParam: 'start_token',
    nextTokenField: 'next_page_token',
    hasMoreField: 'has_more',
    sizeParam: 'page_size',
    pageSize: 100,
  },
  dataSelector: 'nodes',
  dataOptional: true,
  record: batchFileNode,
  envelope: batchFilesEnvelope,
  parent: { resource: 'batches', pathParams: { batch_id: 'id' } },
  contract: { file: 'openapi.yaml', operationId: 'listFiles' },
} as const satisfies ResourceSpec<z.infer<typeof batchFileNode>>;

const batchFilesDeclaration = {
  name: 'batch_files',
  spec: spec(batchFiles),
  maxPages: 10_000,
  // Batches differ in size: the page budget follows the largest complete walk.
  follow: { kind: 'changes', pageSize: 'batchFilesPageSize', budget: 'max' },
  parentId: integerId,
  optional: true,
  key: (r, page) => batchFileKey(r, page),
  // With `filesFromBatchFiles`, every full_path published and not tombstoned. A batch file names its path
  // with a leading '/', which files_metadata's path template already has.
  headPaths: {
    when: (config) => config.producers.filesFromBatchFiles,
    async *paths(ctx) {
      for await (const [, entity] of ctx.state.entries<EntityState>(stateKey('batch_files', undefined, ''))) {
        const fullPath = entity.f?.full_path;
        const path = typeof fullPath === 'string' ? fullPath.replace(/^\/+/, '') : '';
        if (path !== '') yield path;
      }
    },
  },
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
} satisfies Declaration<'batch_files'>;

// runs ------------------------------------------------------------------------------------------------------

export const runStatus = z.enum([
  'CANCELLED',
  'COMPLETE',
  'FAILED',
  'PAUSED',
  'RUNNING',
  'STOPPED_AT_CHECKPOINT',
]);

export const TERMINAL_RUN_STATUSES = ['CANCELLED', 'COMPLETE', 'FAILED'] as const;

export const run = z.looseObject({
  id: opt(z.string()),
  status: opt(runStatus),
  start_timestamp: opt(zInt64),
  finish_timestamp: optNull(zInt64),
  msg: optNull(z.string()),
  batch_id: optNull(zInteger),
  input_dir: optNull(z.string()),
  app_id: optNull(z.string()),
  deployment_id: optNull(z.string()),
  tags: optNull(z.array(z.string())),
});

export const listRunsResponse = z.looseObject({ runs: opt(z.array(run)) });

const terminalRunStatuses: readonly string[] = TERMINAL_RUN_STATUSES;

/** Pass from_timestamp / to_timestamp (Unix seconds) in the query: the API defaults to the last 24 hours. */
export const runs = {
  name: 'runs',
  method: 'GET',
  path: '/v2/apps/runs',
  paginator: { kind: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: 100 },
  dataSelector: 'runs',
  dataOptional: true,
  record: run,
  envelope: openObject,
  contract: { file: 'openapi.yaml', operationId: 'listRuns' },
} as const satisfies ResourceSpec<z.infer<typeof run>>;

const runsDeclaration = {
  name: 'runs',
  spec: spec(runs),
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
} satisfies Declaration<'runs'>;

// runs_results ----------------------------------------------------------------------------------------------

export const fieldSourceCoordinates = z.looseObject({
  top_x: opt(zNumber),
  top_y: opt(zNumber),
  bottom_x: opt(zNumber),
  bottom_y: opt(zNumber),
  page_number: opt(zInteger),
});

export const pageLayout = z.looseObject({
  page_number: zInteger,
  width: zNumber,
  height: zNumber,
});

export const documentField = z.looseObject({
  field_name: opt(z.string()),
  value: opt(z.string()),
  type: opt(z.string()),
  error_msg: opt(z.string()),
  source_coordinates: opt(z.array(fieldSourceCoordinates)),
  edit_history: opt(z.array(modificationObject)),
  confidence: opt(z.looseObject({ model: optNull(zNumber), ocr: optNull(zNumber) })),
  validations: opt(
    z.looseObject({
      valid: opt(z.boolean()),
      alerts: opt(
        z.array(
          z.looseObject({
            alert_level: opt(z.string()),
            msg: opt(z.string()),
            blocked: opt(z.boolean()),
            type: opt(z.string()),
            locations: opt(z.array(z.looseObject({}))),
          }),
        ),
      ),
    }),
  ),
});

export const resultDocument = z.looseObject({
  fields: opt(z.array(documentField)),
  review_completed: opt(z.boolean()),
  class_name: optNull(z.string()),
  page_numbers: opt(z.array(zInteger)),
  page_layouts: opt(z.array(pageLayout)),
  post_processed_paths: opt(z.array(z.string())),
  post_processed_pdf_path: opt(z.string()),
  class_edit_history: opt(z.array(modificationObject)),
  validations: opt(z.looseObject({ final_result_pass: opt(z.boolean()) })),
  classification_confidence: opt(z.looseObject({ model: optNull(zNumber) })),
});

export const fileWithDocuments = z.looseObject({
  original_file_name: opt(z.string()),
  input_file_path: opt(z.string()),
  documents: opt(z.array(resultDocument)),
});

export const caseInputField = z.looseObject({
  record_index: opt(zInteger),
  refined_phrase_name: opt(z.string()),
});

export const caseInfoField = z.looseObject({
  name: z.string(),
  value: z.string(),
  input_fields: opt(z.array(caseInputField)),
  // The spec puts `nullable: true` beside a $ref, which OpenAPI 3.0 ignores; the intent is clear.
  chosen_field: optNull(caseInputField),
  error_msg: opt(z.string()),
  edit_history: opt(z.array(modificationObject)),
  validations: opt(
    z.looseObject({
      valid: z.boolean(),
      failures: opt(z.array(z.looseObject({ type: z.string(), msg: z.string() }))),
    }),
  ),
});

export const caseInfo = z.looseObject({ fields: opt(z.array(caseInfoField)) });

export const runKeys = z.looseObject({ custom: opt(z.looseObject({})) });

/** Everything in a results page except `files`, which are validated one by one. */
export const resultsEnvelope = z.looseObject({
  id: opt(z.string()),
  status: opt(runStatus),
  message: optNull(z.string()),
  start_timestamp: opt(zInt64),
  finish_timestamp: optNull(zInt64),
  // A string here although run.batch_id is an integer: the spec says so, and its examples agree.
  batch_id: opt(z.string()),
  // The schema says object; the spec's first example sends a list of such objects. Accept both.
  keys: opt(z.union([runKeys, z.array(runKeys)])),
  case_info: opt(caseInfo),
  review_completed: opt(z.boolean()),
  has_more: opt(z.boolean()),
});

export const resultsResponse = resultsEnvelope.extend({ files: opt(z.array(fileWithDocuments)) });

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

export const runsResults = {
  name: 'runs_results',
  method: 'GET',
  path: '/v2/apps/runs/{run_id}/results',
  paginator: { kind: 'has_more', offsetParam: 'file_offset', hasMoreField: 'has_more' },
  dataSelector: 'files',
  dataOptional: true,
  record: fileWithDocuments,
  envelope: resultsEnvelope,
  parent: { resource: 'runs', pathParams: { run_id: 'id' } },
  // Confidence and validation feed the field-accuracy dashboards; source info brings the source
  // coordinates, page layouts and post-processed paths. Without the flags they come back empty.
  defaultQuery: {
    include_review_results: true,
    include_confidence_scores: true,
    include_validation_results: true,
    include_source_info: true,
  },
  contract: { file: 'openapi.yaml', operationId: 'getRunResults' },
} as const satisfies ResourceSpec<z.infer<typeof fileWithDocuments>>;

const runsResultsDeclaration = {
  name: 'runs_results',
  spec: spec(runsResults),
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
} satisfies Declaration<'runs_results'>;

// queries_status --------------------------------------------------------------------------------------------

export const boundingBox = z.looseObject({
  top_x: zNumber,
  top_y: zNumber,
  bottom_x: zNumber,
  bottom_y: zNumber,
});

export const sourcePage = z.looseObject({ page_number: zInteger, bboxes: opt(z.array(boundingBox)) });

export const sourceDocument = z.looseObject({ name: z.string(), pages: opt(z.array(sourcePage)) });

export const queryResult = z.looseObject({
  response: z.string(),
  source_documents: opt(z.array(sourceDocument)),
});

export const queryStatus = z.enum(['RUNNING', 'COMPLETE', 'FAILED']);

export const TERMINAL_QUERY_STATUSES = ['COMPLETE', 'FAILED'] as const;

export const queryStatusResponse = z.looseObject({
  query_id: z.string(),
  status: queryStatus,
  results: opt(z.array(queryResult)),
  error: opt(z.string()),
});

export const queriesStatus = {
  name: 'queries_status',
  method: 'GET',
  path: '/v2/queries/{query_id}',
  paginator: { kind: 'single' },
  dataSelector: '',
  record: queryStatusResponse,
  terminal: { field: 'status', values: TERMINAL_QUERY_STATUSES },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getQueryStatus' },
} as const satisfies ResourceSpec<z.infer<typeof queryStatusResponse>>;

const queriesStatusDeclaration = {
  name: 'queries_status',
  spec: spec(queriesStatus),
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
} satisfies Declaration<'queries_status'>;

// files_metadata --------------------------------------------------------------------------------------------

/**
 * The paths files_metadata HEADs, each once: the configured list, then those other resources' records
 * name. They are read from the state as the walks go, and told apart in a walk's key set: a listing of
 * millions of batch files is never held whole.
 */
export async function* filesMetadataPaths(ctx: EngineContext): AsyncGenerator<string> {
  const seen = WalkKeys.of(ctx);
  try {
    const sources = [
      ctx.config.producers.files,
      ...ALL.filter((d) => d.headPaths?.when(ctx.config)).map((d) => d.headPaths!.paths(ctx)),
    ];
    for (const source of sources) {
      for await (const path of source) {
        if (seen.has(path)) continue;
        seen.add(path);
        await seen.settle();
        yield path;
      }
    }
  } finally {
    await seen.close();
  }
}

/** HEAD: no body; the walker builds one fileMetadata record from the headers (404 = exists: false). */
export const filesMetadata = {
  name: 'files_metadata',
  method: 'HEAD',
  path: '/v2/files/{path}',
  multiSegmentParams: ['path'],
  paginator: { kind: 'single' },
  dataSelector: '',
  record: fileMetadata,
  contract: { file: 'openapi.yaml', operationId: 'getFileMetadata' },
} as const satisfies ResourceSpec<z.infer<typeof fileMetadata>>;

const filesMetadataDeclaration = {
  name: 'files_metadata',
  spec: spec(filesMetadata),
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
} satisfies Declaration<'files_metadata'>;

// audit_logs ------------------------------------------------------------------------------------------------

export const auditLogEntry = z.looseObject({
  // Documented as a string of epoch milliseconds; kept as the string, since the spec promises no more.
  timestamp_millis: opt(z.string()),
  email: opt(z.string()),
  user_ip: opt(z.string()),
  log_type: opt(z.string()),
});

export const auditLogsResponse = z.looseObject({
  status: opt(z.string()),
  data: opt(z.looseObject({ results: opt(z.array(auditLogEntry)) })),
});

export const auditLogsRequest = z.object({
  start: optNull(zInteger),
  size: optNull(zInteger),
  log_type: optNull(z.string()),
  email: optNull(z.string()),
  start_time: optNull(z.string()),
  end_time: optNull(z.string()),
});

/** Filter with body fields log_type, email, start_time, end_time (epoch ms as strings). */
export const auditLogs = {
  name: 'audit_logs',
  method: 'POST',
  path: '/v1/auditlogs',
  paginator: { kind: 'body_offset', startField: 'start', sizeField: 'size', pageSize: 100 },
  dataSelector: 'data.results',
  dataOptional: true,
  absentListStatus: { field: 'status', values: ['OK'] },
  record: auditLogEntry,
  envelope: z.looseObject({ status: z.string().optional(), data: z.looseObject({}).optional() }),
  contract: { file: 'openapi.yaml', operationId: 'getAuditLogs' },
} as const satisfies ResourceSpec<z.infer<typeof auditLogEntry>>;

const auditLogsDeclaration = {
  name: 'audit_logs',
  spec: spec(auditLogs),
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
    return [{ key: contentHash(r), fields: { ...r, timestamp_ms: textToMs(r.timestamp_millis) }, object: r }];
  },
} satisfies Declaration<'audit_logs'>;

/**
 * The resources as a table, one declaration each (a resource of core/resources.ts missing here does not
 * compile). Each declaration, in its section above, holds everything the producers know of its resource:
 * the zod mirror of its records, its endpoint (paginator, data selector, parent), the key, the shape (API
 * object → Avro fields), the page cap of one walk (./follow/page-budget.ts; 10,000 pages of 100 batches or
 * runs, 100,000 pages of audit entries per time window), how it is followed and the config knobs it reads.
 * ./jobs.ts turns each root into a poll job.
 */
export const DECLARATIONS = {
  conversations: conversationsDeclaration,
  conversation_documents: conversationDocumentsDeclaration,
  conversation_document_metadata: conversationDocumentMetadataDeclaration,
  batches: batchesDeclaration,
  batch_files: batchFilesDeclaration,
  runs: runsDeclaration,
  runs_results: runsResultsDeclaration,
  queries_status: queriesStatusDeclaration,
  files_metadata: filesMetadataDeclaration,
  audit_logs: auditLogsDeclaration,
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

/**
 * The root whose state the HEAD-per-path roots read extra paths from, while a declaration below it
 * offers them (batches, for batch_files' full paths with `filesFromBatchFiles`); undefined otherwise.
 * In a producers group those roots run in that root's unit, and that root is not split into shares.
 */
export function headPathSource(config: Config): ResourceName | undefined {
  const offering = ALL.find((d) => d.headPaths?.when(config));
  if (!offering) return undefined;
  return ROOTS.find((root) => JOB_RESOURCES[root.name]!.includes(offering.name))?.name;
}

/** The roots followed by HEAD per path (files_metadata). */
export const HEAD_PER_PATH_ROOTS: readonly ResourceName[] = ROOTS.filter(
  (root) => root.follow.kind === 'head-per-path',
).map((root) => root.name);

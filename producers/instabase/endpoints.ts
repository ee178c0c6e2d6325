// The resources of CONVENTIONS.md, declared as data. Every path, parameter and shape here was checked
// against vendor/instabase-api (openapi.yaml; conversations and queries: openapi-2026-01-15.yaml).
import { z } from 'zod';
import type { ResourceSpec } from './resource.ts';
import * as s from './schemas.ts';

const openObject = z.looseObject({});

export const conversations = {
  name: 'conversations',
  method: 'GET',
  path: '/v2/conversations',
  paginator: { kind: 'none' },
  dataSelector: 'conversations',
  dataOptional: true,
  record: s.conversationSummary,
  envelope: openObject,
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'listConversations' },
} as const satisfies ResourceSpec<s.ConversationSummary>;

/** GET /v2/conversations/{id}: the documents are the records; the conversation itself is the page meta. */
export const conversationDocuments = {
  name: 'conversation_documents',
  method: 'GET',
  path: '/v2/conversations/{conversation_id}',
  paginator: { kind: 'none' },
  dataSelector: 'documents',
  dataOptional: true,
  record: s.documentDetails,
  envelope: s.conversationEnvelope,
  parent: { resource: 'conversations', pathParams: { conversation_id: 'id' } },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getConversation' },
} as const satisfies ResourceSpec<s.DocumentDetails>;

export const conversationDocumentMetadata = {
  name: 'conversation_document_metadata',
  method: 'GET',
  path: '/v2/conversations/{conversation_id}/documents/{document_id}',
  paginator: { kind: 'single' },
  dataSelector: '',
  record: s.documentMetadataResponse,
  parent: {
    resource: 'conversation_documents',
    pathParams: { conversation_id: '^conversation_id', document_id: 'id' },
  },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getConversationDocumentMetadata' },
} as const satisfies ResourceSpec<s.DocumentMetadata>;

export const batches = {
  name: 'batches',
  method: 'GET',
  path: '/v2/batches',
  paginator: { kind: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: 100 },
  dataSelector: 'batches',
  dataOptional: true,
  record: s.batchInfo,
  envelope: openObject,
  contract: { file: 'openapi.yaml', operationId: 'listBatches' },
} as const satisfies ResourceSpec<s.BatchInfo>;

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
  record: s.batchFileNode,
  envelope: s.batchFilesEnvelope,
  parent: { resource: 'batches', pathParams: { batch_id: 'id' } },
  contract: { file: 'openapi.yaml', operationId: 'listFiles' },
} as const satisfies ResourceSpec<s.BatchFileNode>;

/** Pass from_timestamp / to_timestamp (Unix seconds) in the query: the API defaults to the last 24 hours. */
export const runs = {
  name: 'runs',
  method: 'GET',
  path: '/v2/apps/runs',
  paginator: { kind: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: 100 },
  dataSelector: 'runs',
  dataOptional: true,
  record: s.run,
  envelope: openObject,
  contract: { file: 'openapi.yaml', operationId: 'listRuns' },
} as const satisfies ResourceSpec<s.Run>;

export const runsResults = {
  name: 'runs_results',
  method: 'GET',
  path: '/v2/apps/runs/{run_id}/results',
  paginator: { kind: 'has_more', offsetParam: 'file_offset', hasMoreField: 'has_more' },
  dataSelector: 'files',
  dataOptional: true,
  record: s.fileWithDocuments,
  envelope: s.resultsEnvelope,
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
} as const satisfies ResourceSpec<s.FileWithDocuments>;

export const queriesStatus = {
  name: 'queries_status',
  method: 'GET',
  path: '/v2/queries/{query_id}',
  paginator: { kind: 'single' },
  dataSelector: '',
  record: s.queryStatusResponse,
  terminal: { field: 'status', values: s.TERMINAL_QUERY_STATUSES },
  contract: { file: 'openapi-2026-01-15.yaml', operationId: 'getQueryStatus' },
} as const satisfies ResourceSpec<s.QueryStatusResponse>;

/** HEAD: no body; the walker builds one fileMetadata record from the headers (404 = exists: false). */
export const filesMetadata = {
  name: 'files_metadata',
  method: 'HEAD',
  path: '/v2/files/{path}',
  multiSegmentParams: ['path'],
  paginator: { kind: 'single' },
  dataSelector: '',
  record: s.fileMetadata,
  contract: { file: 'openapi.yaml', operationId: 'getFileMetadata' },
} as const satisfies ResourceSpec<s.FileMetadata>;

/** Filter with body fields log_type, email, start_time, end_time (epoch ms as strings). */
export const auditLogs = {
  name: 'audit_logs',
  method: 'POST',
  path: '/v1/auditlogs',
  paginator: { kind: 'body_offset', startField: 'start', sizeField: 'size', pageSize: 100 },
  dataSelector: 'data.results',
  dataOptional: true,
  absentListStatus: { field: 'status', values: ['OK'] },
  record: s.auditLogEntry,
  envelope: z.looseObject({ status: z.string().optional(), data: z.looseObject({}).optional() }),
  contract: { file: 'openapi.yaml', operationId: 'getAuditLogs' },
} as const satisfies ResourceSpec<s.AuditLogEntry>;

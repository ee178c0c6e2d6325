// zod mirrors of the OpenAPI components in vendor/instabase-api (openapi.yaml wins where both files
// describe a schema; conversations and queries exist only in openapi-2026-01-15.yaml). Objects are loose:
// a field Instabase adds tomorrow is kept for the dead-letter and the raw column, not stripped. Properties
// the spec does not list as required are optional; `nullable: true` becomes `.nullable()`.
import { z } from 'zod';
import type { SchemaIssue } from './errors.ts';
import { isRfc3339 } from './rfc3339.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const isIntegral = (v: number): boolean => Number.isInteger(v);

/**
 * `type: integer` with no format: any integer, however large. parseJson hands back bigint past 2^53, so
 * both representations are valid (a batch id, a document id or a page number may be either).
 */
export const zInteger = z.union([z.number().refine(isIntegral, 'expected an integer'), z.bigint()]);
/**
 * `format: int64`: integers in the int64 range, as number or (past 2^53; run timestamps are nanoseconds)
 * bigint. Anything outside the int64 range is not.
 */
export const zInt64 = z.union([
  z
    .number()
    .refine(
      (v) => isIntegral(v) && v >= Number(INT64_MIN) && v < Number(INT64_MAX),
      'expected an int64 integer',
    ),
  z.bigint().min(INT64_MIN).max(INT64_MAX),
]);
/**
 * `type: number` (with or without format float/double): any JSON number, including one written as a long
 * integer literal (10000000000000000), which parseJson returns as bigint to keep it exact.
 */
export const zNumber = z.union([z.number(), z.bigint()]);
/** `format: date-time`: RFC 3339 exactly (lowercase t/z and leap seconds included; ./rfc3339.ts). */
export const zDateTime = z.string().refine(isRfc3339, 'expected an RFC 3339 date-time');

const opt = <T extends z.ZodType>(t: T) => t.optional();
const optNull = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const runStatus = z.enum([
  'CANCELLED',
  'COMPLETE',
  'FAILED',
  'PAUSED',
  'RUNNING',
  'STOPPED_AT_CHECKPOINT',
]);
export const TERMINAL_RUN_STATUSES = ['CANCELLED', 'COMPLETE', 'FAILED'] as const;

export const errorBody = z.looseObject({ message: opt(z.string()) });

export const batch = z.looseObject({ id: zInteger });

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

export const modificationObject = z.looseObject({
  timestamp: z.string(),
  user_id: z.string(),
  // openapi.yaml made message nullable; the 2026-01-15 file still required it.
  modifications: opt(z.array(z.looseObject({ message: optNull(z.string()) }))),
});

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

const runKeys = z.looseObject({ custom: opt(z.looseObject({})) });

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

export const conversationSummary = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: opt(z.string()),
});

export const listConversationsResponse = z.looseObject({ conversations: opt(z.array(conversationSummary)) });

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

export const documentMetadataResponse = z.looseObject({
  id: opt(zInteger),
  ibdoc_path: opt(z.string()),
  name: opt(z.string()),
  metadata: opt(z.array(z.looseObject({}))),
});

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

/**
 * HEAD /v2/files/{path} has no body; the client builds this record from the response headers. `type`
 * follows the documented Content-Type convention (folder: application/json, file: octet-stream).
 */
export const fileMetadata = z.object({
  path: z.string(),
  exists: z.boolean(),
  type: z.enum(['file', 'folder']).nullable(),
  content_type: z.string().nullable(),
  content_length: zInt64.nullable(),
  last_modified: z.string().nullable(),
  /** last-modified as epoch ms; the spec says date-time, HTTP says HTTP-date, both are read. */
  last_modified_ms: zInteger.nullable(),
});

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

// Response shapes the project does not poll; mirrored so every example in the spec files is checked.
export const multipartUploadSessionResponse = z.looseObject({
  session_id: z.string(),
  part_size: zInteger,
});

export type BatchInfo = z.infer<typeof batchInfo>;
export type BatchFileNode = z.infer<typeof batchFileNode>;
export type Run = z.infer<typeof run>;
export type FileWithDocuments = z.infer<typeof fileWithDocuments>;
export type ResultsEnvelope = z.infer<typeof resultsEnvelope>;
export type ResultsResponse = z.infer<typeof resultsResponse>;
export type AuditLogEntry = z.infer<typeof auditLogEntry>;
export type AuditLogsRequest = z.infer<typeof auditLogsRequest>;
export type ConversationSummary = z.infer<typeof conversationSummary>;
export type Conversation = z.infer<typeof conversation>;
export type ConversationEnvelope = z.infer<typeof conversationEnvelope>;
export type DocumentDetails = z.infer<typeof documentDetails>;
export type DocumentMetadata = z.infer<typeof documentMetadataResponse>;
export type QueryStatusResponse = z.infer<typeof queryStatusResponse>;
export type FileMetadata = z.infer<typeof fileMetadata>;

/** zod issues as plain data: path, code and message, safe to log and to put in a dead letter. */
export function toIssues(error: z.ZodError): SchemaIssue[] {
  return error.issues.map((i) => ({
    path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
    code: i.code,
    message: i.message,
  }));
}

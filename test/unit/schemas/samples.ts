// Sample value records for every resource, at the edges the pipeline has to carry: int64 extremes,
// nanosecond timestamps beyond 2^53, huge and tiny doubles, non-numeric timestamp strings, unicode.
// Shared by the unit tests and test/integration/ddl.test.ts.
import type { ResourceName } from '../../../schemas/index.ts';

type Sample = Record<string, unknown>;

const MAX = Number.MAX_SAFE_INTEGER; // 9007199254740991
const MIN = -Number.MAX_SAFE_INTEGER;

function envelope(endpoint: string, hash: string, raw: unknown, extra: Partial<Sample> = {}): Sample {
  return {
    _source_endpoint: endpoint,
    _ib_context: 'acme-org',
    _fetched_at: 1764140000123,
    _content_hash: hash,
    _deleted: false,
    _raw_json: JSON.stringify(raw),
    _nulled_fields: [],
    ...extra,
  };
}

export const SAMPLES: Readonly<Record<ResourceName, readonly Sample[]>> = {
  conversations: [
    {
      ...envelope('GET /v2/conversations/{conversation_id}', 'c1', { id: 'conv-1', future_field: [1, 2] }),
      id: 'conv-1',
      name: 'Quarterly "review" \u00e9\u{1F600}\n\ttabs',
      description: null,
      state: 'COMPLETE',
    },
  ],
  conversation_documents: [
    {
      ...envelope('GET /v2/conversations/{conversation_id}', 'cd1', { id: MAX }),
      conversation_id: 'conv-1',
      id: MAX,
      name: 'test.pdf',
      state: 'PROCESSED',
      uploadTimestamp: '2024-03-11T08:16:16Z',
      uploadTimestamp_ms: 1710144976000,
    },
    {
      ...envelope('GET /v2/conversations/{conversation_id}', 'cd2', { id: MIN }),
      conversation_id: 'conv-1',
      id: MIN,
      name: null,
      state: null,
      uploadTimestamp: 'sometime last tuesday',
      uploadTimestamp_ms: null,
    },
  ],
  conversation_document_metadata: [
    {
      ...envelope('GET /v2/conversations/{conversation_id}/documents/{document_id}', 'm1', {}),
      conversation_id: 'conv-1',
      id: 42,
      ibdoc_path: '/a/b.ibdoc',
      name: 'b.pdf',
      metadata: [JSON.stringify({ pages: 3, lang: 'en' }), '{}'],
    },
  ],
  batches: [
    {
      ...envelope('GET /v2/batches', 'b1', { id: MAX }),
      id: MAX,
      name: 'batch \\ with backslash',
      workspace: 'ws',
      mount_point: null,
      repo_owner: 'owner',
      batch_owner: 'alice',
      created_at_ms: MIN,
      updated_at_ms: MAX,
      path_suffix: '',
    },
    {
      ...envelope('GET /v2/batches', 'b2', { id: MIN }, { _ib_context: null, _deleted: true }),
      id: MIN,
      name: null,
      workspace: null,
      mount_point: null,
      repo_owner: null,
      batch_owner: null,
      created_at_ms: null,
      updated_at_ms: 0,
      path_suffix: null,
    },
  ],
  runs: [
    {
      ...envelope('GET /v2/apps/runs', 'r1', { id: 'run-1' }),
      id: 'run-1',
      status: 'COMPLETE',
      // The API's own example, beyond 2^53: exact only as a bigint.
      start_timestamp: 1765912514238248673n,
      finish_timestamp: 1765912529614833939n,
      msg: null,
      batch_id: MIN,
      input_dir: null,
      app_id: 'app',
      deployment_id: null,
      tags: ['a', 'b'],
    },
    {
      ...envelope('GET /v2/apps/runs', 'r2', { id: 'run-2' }),
      id: 'run-2',
      status: 'SOMETHING_NEW',
      // What JSON.parse makes of a nanosecond timestamp: an integer-valued double above 2^53.
      start_timestamp: 1765912514238248700,
      finish_timestamp: null,
      msg: 'still running',
      batch_id: null,
      input_dir: '/in',
      app_id: null,
      deployment_id: 'dep',
      tags: [],
    },
  ],
  runs_results: [
    {
      ...envelope('GET /v2/apps/runs/{run_id}/results', 'rr1', { class_name: 'W2' }),
      run_id: 'run-1',
      file_index: 0,
      document_index: 0,
      original_file_name: 'test.png',
      input_file_path: 'org/fs/Drive/app-runs/run-1/input/test.png',
      class_name: 'Wage And Tax Statement',
      review_completed: true,
      final_result_pass: false,
      classification_confidence: 1e308,
      page_numbers: [1, 2, MAX, MIN],
      post_processed_paths: ['/p/1.pdf'],
      post_processed_pdf_path: null,
      page_layouts: [
        { page_number: 0, width: 1012.0, height: 639.0 },
        { page_number: MAX, width: -1.7976931348623157e308, height: 2.2250738585072014e-308 },
      ],
      fields: [
        {
          name: 'employers_address_and_ZIP_code',
          value: '123 STREET RD ANYWHERE, USA,12345',
          type: 'TEXT',
          confidence: 0.5900550516,
          ocr_confidence: 0.6900550516,
          error: null,
          valid: true,
        },
        {
          name: 'line_items',
          value: JSON.stringify([{ amount: 1.5 }, { amount: null }]),
          type: 'TABLE',
          confidence: 1e-300,
          ocr_confidence: null,
          error: null,
          valid: null,
        },
        {
          name: 'total',
          value: 'ERROR',
          type: 'NUMBER',
          confidence: null,
          ocr_confidence: null,
          error: 'boom',
          valid: false,
        },
      ],
    },
    {
      ...envelope('GET /v2/apps/runs/{run_id}/results', 'rr2', {}),
      run_id: 'run-1',
      file_index: 1,
      document_index: 0,
      original_file_name: null,
      input_file_path: null,
      class_name: null,
      review_completed: null,
      final_result_pass: null,
      classification_confidence: null,
      page_numbers: [],
      post_processed_paths: [],
      post_processed_pdf_path: null,
      page_layouts: [],
      fields: [],
    },
  ],
  queries_status: [
    {
      ...envelope('GET /v2/queries/{query_id}', 'q1', {}),
      query_id: '01917eb8-4c73-7981-b664-c0559e09a499',
      status: 'COMPLETE',
      error: null,
      results: [
        { response: 'Monday, March 11, 2024', source_document_names: ['test.eml'] },
        { response: null, source_document_names: [] },
      ],
    },
    {
      ...envelope('GET /v2/queries/{query_id}', 'q2', {}),
      query_id: 'q-failed',
      status: 'FAILED',
      error: '"message":"Invalid query uuid passed"',
      results: [],
    },
  ],
  files_metadata: [
    {
      ...envelope('HEAD /v2/files/{path}', 'f1', { status: 200, headers: {} }),
      path: 'org/fs/Drive/a.pdf',
      http_status: 200,
      present: true,
      kind: 'file',
      content_type: 'application/octet-stream',
      size: MAX,
      last_modified: 'Wed, 21 Oct 2015 07:28:00 GMT',
      last_modified_ms: 1445412480000,
    },
    {
      ...envelope('HEAD /v2/files/{path}', 'f2', { status: 404, headers: {} }),
      path: 'org/fs/Drive/missing',
      http_status: 404,
      present: false,
      kind: null,
      content_type: null,
      size: null,
      last_modified: null,
      last_modified_ms: null,
    },
  ],
  audit_logs: [
    {
      ...envelope('POST /v1/auditlogs', 'a1', { timestamp_millis: '1749139277810' }),
      timestamp_millis: '1749139277810',
      timestamp_ms: 1749139277810,
      email: 'a@b.c',
      user_ip: '10.0.0.1',
      log_type: 'api_v2',
    },
    {
      ...envelope('POST /v1/auditlogs', 'a2', { timestamp_millis: 'not a number' }),
      timestamp_millis: 'not a number',
      timestamp_ms: null,
      email: null,
      user_ip: null,
      log_type: null,
    },
  ],
};

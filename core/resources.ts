/** The resources, in the order of CONVENTIONS.md; their names are topics, subjects and tables. */
export const RESOURCE_NAMES = [
  'conversations',
  'conversation_documents',
  'conversation_document_metadata',
  'batches',
  'batch_files',
  'runs',
  'runs_results',
  'queries_status',
  'files_metadata',
  'audit_logs',
] as const;

export type ResourceName = (typeof RESOURCE_NAMES)[number];

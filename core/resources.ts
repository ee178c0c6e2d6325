/**
 * What every layer knows of a resource: its name (its topic, registry subject and table) and how its
 * records are stored. This table is where a resource is registered: one row each, in the order of
 * CONVENTIONS.md. Its fields come from the Avro schema (schemas/<name>.avsc); how the producers fetch,
 * key and follow it is its declaration (producers/resources.ts), a `Record<ResourceName, …>` that does
 * not compile while a row here has no declaration.
 */
export interface ResourceMeta {
  /**
   * entity: the topic is compacted and the latest version per key is the state.
   * append: the topic uses delete with retention; every key is a distinct immutable event.
   * Both kinds are deduplicated by key in ClickHouse, so redelivery is invisible.
   */
  readonly kind: 'entity' | 'append';
  /** Fields forming the natural key: the Kafka message key (see entityKey) and the table's ORDER BY. */
  readonly key: readonly string[];
  /** The field dashboards use as the event's time; a timestamp-millis or timestamp-nanos long. */
  readonly eventTime: string;
}

const TABLE = {
  conversations: { kind: 'entity', key: ['id'], eventTime: '_fetched_at' },
  conversation_documents: { kind: 'entity', key: ['conversation_id', 'id'], eventTime: 'uploadTimestamp_ms' },
  conversation_document_metadata: {
    kind: 'entity',
    key: ['conversation_id', 'id'],
    eventTime: '_fetched_at',
  },
  batches: { kind: 'entity', key: ['id'], eventTime: 'updated_at_ms' },
  batch_files: { kind: 'entity', key: ['batch_id', 'full_path'], eventTime: 'modified_timestamp_ms' },
  runs: { kind: 'entity', key: ['id'], eventTime: 'start_timestamp' },
  runs_results: { kind: 'entity', key: ['run_id', 'file_index', 'document_index'], eventTime: '_fetched_at' },
  queries_status: { kind: 'entity', key: ['query_id'], eventTime: '_fetched_at' },
  files_metadata: { kind: 'entity', key: ['path'], eventTime: 'last_modified_ms' },
  audit_logs: { kind: 'append', key: ['_content_hash'], eventTime: 'timestamp_ms' },
} satisfies Record<string, ResourceMeta>;

export type ResourceName = keyof typeof TABLE;

export const RESOURCE_META: Readonly<Record<ResourceName, ResourceMeta>> = TABLE;

/** The resource names in the table's order (a tuple type, as z.enum wants it). */
export const RESOURCE_NAMES = Object.keys(RESOURCE_META) as [ResourceName, ...ResourceName[]];

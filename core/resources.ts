/**
 * What every layer knows of a resource: its name (its topic, registry subject and table), how its records
 * are stored and the config knobs of its own. This table is where a resource is registered: one row each,
 * in the order of CONVENTIONS.md. Its fields come from the Avro schema (schemas/<name>.avsc); how the
 * producers fetch, key and follow it is its declaration (producers/resources.ts), a
 * `Record<ResourceName, …>` that does not compile while a row here has no declaration; what the simulator
 * serves of it is its module, sim/resources/<name>.ts.
 */
import { z } from 'zod';
import { nonNegativeInt, positiveInt } from './config-fields.ts';

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
  /**
   * Keys of the `producers` config that only this resource reads (its page size, its time window, what
   * it polls), each with its default and description: core/config.ts puts them into the config schema,
   * and so into the README's table, so they come and go with the row. The producers' declaration reads
   * them by name.
   */
  readonly knobs?: Readonly<Record<string, z.ZodType>>;
}

const TABLE = {
  conversations: { kind: 'entity', key: ['id'], eventTime: '_fetched_at' },
  conversation_documents: { kind: 'entity', key: ['conversation_id', 'id'], eventTime: 'uploadTimestamp_ms' },
  conversation_document_metadata: {
    kind: 'entity',
    key: ['conversation_id', 'id'],
    eventTime: '_fetched_at',
  },
  batches: {
    kind: 'entity',
    key: ['id'],
    eventTime: 'updated_at_ms',
    knobs: { batchesPageSize: positiveInt.default(100).describe('page size of the batches listing') },
  },
  batch_files: {
    kind: 'entity',
    key: ['batch_id', 'full_path'],
    eventTime: 'modified_timestamp_ms',
    knobs: {
      batchFilesPageSize: positiveInt
        .default(100)
        .describe("page size of a batch's files listing (`batch_files`, walked with `batches`)"),
      filesFromBatchFiles: z
        .boolean()
        .default(false)
        .describe(
          'also HEAD, for `files_metadata`, the `full_path` of every batch file published by `batch_files`',
        ),
    },
  },
  runs: {
    kind: 'entity',
    key: ['id'],
    eventTime: 'start_timestamp',
    knobs: {
      runsPageSize: positiveInt.default(100).describe('page size of the runs listing'),
      runsLookbackMs: nonNegativeInt
        .default(3_600_000)
        .describe('each runs poll re-lists this far behind its watermark, so late updates are caught'),
    },
  },
  runs_results: { kind: 'entity', key: ['run_id', 'file_index', 'document_index'], eventTime: '_fetched_at' },
  queries_status: {
    kind: 'entity',
    key: ['query_id'],
    eventTime: '_fetched_at',
    knobs: {
      queryIds: z
        .array(z.string().min(1))
        .default([])
        .describe('query ids to track (more arrive on the `<prefix>_queries` topic)'),
    },
  },
  files_metadata: {
    kind: 'entity',
    key: ['path'],
    eventTime: 'last_modified_ms',
    knobs: {
      files: z.array(z.string().min(1)).default([]).describe('paths to HEAD for `files_metadata`'),
    },
  },
  audit_logs: {
    kind: 'append',
    key: ['_content_hash'],
    eventTime: 'timestamp_ms',
    knobs: {
      auditLogsPageSize: positiveInt.default(500).describe('page size of the audit logs listing'),
      auditLogsSettleMs: nonNegativeInt
        .default(5_000)
        .describe(
          'audit windows are walked once they are this far behind now, so entries written late are not missed; the newer tail is read at every poll, and what it published is not repeated',
        ),
    },
  },
} satisfies Record<string, ResourceMeta>;

export type ResourceName = keyof typeof TABLE;

export const RESOURCE_META: Readonly<Record<ResourceName, ResourceMeta>> = TABLE;

/** The resource names in the table's order (a tuple type, as z.enum wants it). */
export const RESOURCE_NAMES = Object.keys(RESOURCE_META) as [ResourceName, ...ResourceName[]];

type Rows = typeof TABLE;
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void
  ? I
  : never;

/** Every resource's knobs as one object type: what core/config.ts adds to the `producers` schema. */
export type ResourceKnobs = UnionToIntersection<
  { [K in ResourceName]: Rows[K] extends { knobs: infer Knobs } ? Knobs : object }[ResourceName]
>;

function allKnobs(): ResourceKnobs {
  const knobs: Record<string, z.ZodType> = {};
  for (const [name, meta] of Object.entries(RESOURCE_META)) {
    for (const [key, schema] of Object.entries(meta.knobs ?? {})) {
      // Two rows with one knob would be one config key read by both: refused as the module loads.
      if (key in knobs) throw new Error(`core/resources.ts: the knob ${key} of ${name} is another's`);
      knobs[key] = schema;
    }
  }
  return knobs as ResourceKnobs;
}

/** The knobs of every resource, in the table's order. */
export const RESOURCE_KNOBS: ResourceKnobs = allKnobs();

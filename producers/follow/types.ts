import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/log.ts';
import type { ResourceName } from '../../core/resources.ts';
import type { DeadLetter } from '../dead-letter.ts';
import type { InstabaseClient } from '../instabase/client.ts';
import type { Page } from '../instabase/paginators.ts';
import type { ResourceSpec } from '../instabase/resource.ts';
import type { StateChange, StateStore } from '../state-store.ts';

/** One record to publish: the Avro fields (API object plus derived fields) and the object itself. */
export interface Emit {
  resource: ResourceName;
  key: string;
  fields: Record<string, unknown>;
  /** The API object: `_raw_json` and `_content_hash` are taken from it. */
  object: unknown;
  endpoint: string;
  deleted: boolean;
  /**
   * The state key that records this record, when its state repeats it for a tombstone: if the record is
   * too large to publish, that state keeps only the hash (no tombstone for what never went out).
   */
  stateKey?: string;
}

/** What a source hands the runtime at each checkpoint, as a Kafka Connect source task does. */
export interface Step {
  emits: Emit[];
  dead: DeadLetter[];
  state: StateChange[];
}

export const emptyStep = (): Step => ({ emits: [], dead: [], state: [] });

/**
 * Entities concluded per transaction when a walk settles what it did not see (tombstones, marks, the
 * entities a window forgets). They are read from the state and committed in parts, never held whole: a
 * kill between two parts leaves the rest for the next walk, which concludes them the same way.
 */
export const CONCLUDED_PER_COMMIT = 1_000;

export interface EngineContext {
  config: Config;
  client: InstabaseClient;
  state: StateStore;
  logger: Logger;
  /** Publishes a step's records and its state in one transaction; resolves once committed. */
  commit(step: Step): Promise<void>;
  now(): number;
  signal: AbortSignal;
}

/** A record of a page, ready to be keyed and shaped. */
export type ApiRecord = Record<string, unknown>;

/**
 * A resource, declared the way dlt's rest_api declares one: the endpoint (with its paginator and
 * data selector) comes from the client's spec table; the rest says how records are keyed, shaped,
 * and followed incrementally.
 */
export interface ResourceDeclaration {
  name: ResourceName;
  spec: ResourceSpec<unknown>;
  /** The natural id; for children it is unique within the parent's scope. */
  key(record: ApiRecord, page: Page<unknown>): string;
  /**
   * API record → the Avro records it becomes (several for runs_results: one per document). `index`
   * is the record's position in the whole listing.
   */
  shape?(record: ApiRecord, page: Page<unknown>, index: number): Shaped[];
  /** Most pages one walk may take, whatever its history (./page-budget.ts); the client's cap otherwise. */
  maxPages?: number;
}

export interface Shaped {
  key: string;
  fields: ApiRecord;
  object: unknown;
}

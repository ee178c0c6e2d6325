// The Avro schemas are the single source of truth for topics, registry subjects and ClickHouse tables.
// The .avsc files beside this module are what gets registered (read through the package root, so the
// build in dist/ reads these same files); the little metadata the producers and
// sinks need beyond the fields themselves is the resource's row in core/resources.ts (RESOURCE_META),
// the one table every layer reads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { PACKAGE_ROOT } from '../core/package-root.ts';
import { RESOURCE_META, RESOURCE_NAMES, type ResourceMeta, type ResourceName } from '../core/resources.ts';
import { int64TypeHook } from './int64.ts';

export { RESOURCE_META, RESOURCE_NAMES as RESOURCES, type ResourceMeta, type ResourceName };
export { isInt64, logicalTypeOf } from './int64.ts';

/** An Avro schema as parsed JSON. */
export type AvroSchema =
  string | AvroSchema[] | AvroRecordSchema | { readonly type: AvroSchema; readonly [attr: string]: unknown };

export interface AvroField {
  readonly name: string;
  readonly type: AvroSchema;
  readonly default?: unknown;
  readonly doc?: string;
}

export interface AvroRecordSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly fields: readonly AvroField[];
}

export const NAMESPACE = 'com.instabase.stream';

/** The envelope every value schema starts with, in this order. */
export const ENVELOPE_FIELDS = [
  '_source_endpoint',
  '_ib_context',
  '_fetched_at',
  '_content_hash',
  '_deleted',
  '_raw_json',
] as const;

/**
 * The envelope field added after the typed fields: paths of the fields published as null because their
 * logical type cannot represent the value sent (producers/avro-mapper.ts; the value stays in _raw_json).
 */
export const NULLED_FIELDS = '_nulled_fields';

function readSchema(file: string): unknown {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, 'schemas', file), 'utf8'));
}

const valueSchemas = new Map<ResourceName, AvroRecordSchema>(
  RESOURCE_NAMES.map((r) => [r, readSchema(`${r}.avsc`) as AvroRecordSchema]),
);
const keySchemaJson = readSchema('key.avsc') as AvroSchema;

export function valueSchema(resource: ResourceName): AvroRecordSchema {
  const schema = valueSchemas.get(resource);
  if (!schema) throw new Error(`unknown resource: ${String(resource)}`);
  return schema;
}

/**
 * The key schema of every topic: a plain Avro string holding the natural key (see entityKey). Keys are
 * never evolved (a changed key changes partitioning and defeats compaction), so a record wrapper would
 * buy nothing and would make keys harder to read in Kafka tooling.
 */
export function keySchema(): AvroSchema {
  return keySchemaJson;
}

export function resourceMeta(resource: ResourceName): ResourceMeta {
  return RESOURCE_META[resource];
}

/**
 * Options for avsc's Type.forSchema. Every reader and writer of these schemas must use them (the sink
 * also for schemas fetched from the registry; @kafkajs/confluent-schema-registry takes them as
 * `{ [SchemaType.AVRO]: avroOptions() }`): they install the exact int64 type (./int64.ts) and decode
 * ["null", T] unions to plain values. A fresh object each call, because avsc stores its registry of
 * named types in the options object.
 */
export function avroOptions(): { typeHook: typeof int64TypeHook; wrapUnions: 'never' } {
  return { typeHook: int64TypeHook, wrapUnions: 'never' };
}

export function parseAvroSchema(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, avroOptions() as Partial<avro.ForSchemaOptions>);
}

const types = new Map<ResourceName, avro.Type>();

export function avroType(resource: ResourceName): avro.Type {
  let type = types.get(resource);
  if (!type) {
    type = parseAvroSchema(valueSchema(resource));
    types.set(resource, type);
  }
  return type;
}

/**
 * The Kafka message key: the key field's value as a string, or for a composite key the JSON array of
 * the values as strings, e.g. ["3f2a…","0","2"]. Unambiguous without any escaping rules.
 */
export function entityKey(resource: ResourceName, record: Readonly<Record<string, unknown>>): string {
  const fields = RESOURCE_META[resource].key;
  const parts = fields.map((f) => {
    const v = record[f];
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'bigint') return String(v);
    throw new Error(`${resource}: key field ${f} is ${v === null ? 'null' : typeof v}`);
  });
  return parts.length === 1 ? (parts[0] as string) : JSON.stringify(parts);
}

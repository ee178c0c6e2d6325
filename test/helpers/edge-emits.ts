/**
 * Hand-made records for every resource whose every logical-typed field holds a boundary value: the
 * first and last millisecond of years 1-9999, one beyond each, and the int64 extremes; plus one whose
 * every nullable string holds a lone UTF-16 surrogate, which UTF-8 cannot encode. They go through
 * the producers' own runtime (encoder + transactional publisher), so they cover every resource whatever
 * the simulator's --edge-values serves.
 */
import type { ResourceName } from '../../core/resources.ts';
import { contentHash } from '../../producers/content-hash.ts';
import type { Emit } from '../../producers/follow/types.ts';
import { RESOURCES, RESOURCE_META, entityKey, valueSchema, type AvroSchema } from '../../schemas/index.ts';

export const FIRST_MS = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
export const LAST_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
const INT64_MAX = 2n ** 63n - 1n;

/** [value, whether a timestamp-millis field can hold it]; nanosecond fields can hold every one. */
export const EDGE_VALUES: readonly (readonly [number | bigint, boolean])[] = [
  [FIRST_MS, true],
  [LAST_MS, true],
  [FIRST_MS - 1, false],
  [LAST_MS + 1, false],
  [INT64_MAX, false],
  [-INT64_MAX, false],
  [-INT64_MAX - 1n, false],
];

/** The logical type of a top-level field (`T` or `["null", T]`), if it has one. */
export function logicalTypeOfField(type: AvroSchema): string | undefined {
  const t = Array.isArray(type) ? type.find((b) => b !== 'null') : type;
  if (t && typeof t === 'object' && !Array.isArray(t) && 'logicalType' in t) return String(t.logicalType);
  return undefined;
}

/** Top-level fields with a logical type, the producer-set `_fetched_at` excepted. */
export function logicalFields(resource: ResourceName): { name: string; logicalType: string }[] {
  return valueSchema(resource).fields.flatMap((f) => {
    const logicalType = logicalTypeOfField(f.type);
    return logicalType && f.name !== '_fetched_at' ? [{ name: f.name, logicalType }] : [];
  });
}

export const LONE_SURROGATE = 'lone \ud800 surrogate';

/** Top-level `["null", "string"]` fields outside the envelope (which the encoder fills itself). */
export function nullableStrings(resource: ResourceName): string[] {
  // Not key fields (a run's optional id): a lone surrogate in a key dead-letters the record instead.
  const key = new Set<string>(RESOURCE_META[resource].key);
  return valueSchema(resource)
    .fields.filter(
      (f) => !f.name.startsWith('_') && !key.has(f.name) && JSON.stringify(f.type) === '["null","string"]',
    )
    .map((f) => f.name);
}

function edgeEmit(resource: ResourceName, n: number, values: Record<string, unknown>): Emit {
  const fieldsOf = valueSchema(resource).fields;
  const fields: Record<string, unknown> = {};
  for (const k of RESOURCE_META[resource].key) {
    if (k === '_content_hash') continue;
    const type = fieldsOf.find((f) => f.name === k)?.type;
    // A key field may be optional (["null", "long"]): the edge records give it a value.
    fields[k] = type === 'long' || (Array.isArray(type) && type.includes('long')) ? n : `edge-${n}`;
  }
  Object.assign(fields, values);
  const object = { ...fields, edge: n };
  return {
    resource,
    key: entityKey(resource, { ...fields, _content_hash: contentHash(object) }),
    fields,
    object,
    endpoint: 'TEST edge values',
    deleted: false,
  };
}

/**
 * Per resource, one record per edge value and one with lone surrogates; keys are numbered from 900000
 * so they meet no simulator key.
 */
export function edgeEmits(): Emit[] {
  return RESOURCES.flatMap((resource) => [
    ...EDGE_VALUES.map(([value], i) =>
      edgeEmit(
        resource,
        900_000 + i,
        Object.fromEntries(logicalFields(resource).map(({ name }) => [name, value])),
      ),
    ),
    edgeEmit(
      resource,
      900_000 + EDGE_VALUES.length,
      Object.fromEntries(nullableStrings(resource).map((name) => [name, LONE_SURROGATE])),
    ),
  ]);
}

/** How many values of each resource's fields edgeEmits() must have published as null. */
export function expectedEdgeNulls(): Record<ResourceName, Record<string, number>> {
  const out = {} as Record<ResourceName, Record<string, number>>;
  const outside = EDGE_VALUES.filter(([, fits]) => !fits).length;
  for (const resource of RESOURCES) {
    out[resource] = {};
    for (const { name, logicalType } of logicalFields(resource)) {
      // The edge values are chosen for milliseconds; every long is a representable nanosecond instant.
      if (logicalType === 'timestamp-millis') out[resource][name] = outside;
      else if (logicalType !== 'timestamp-nanos')
        throw new Error(`${resource}.${name}: ${logicalType} needs edge values of its own here`);
    }
    for (const name of nullableStrings(resource)) out[resource][name] = 1;
  }
  return out;
}

/**
 * Records at the edges the RowBinary transcoder has to carry exactly as the JSONEachRow path did, for
 * every resource: SAMPLES (int64 extremes, nanosecond timestamps, unicode, keyless records), and
 * variants of each built from its Avro fields: empty strings, strings with tabs, newlines, backslashes,
 * quotes, NUL and astral characters, NULLs, int64 at ±2^63, int32 at its bounds, huge, tiny, NaN and
 * infinite doubles, empty arrays and arrays of odd strings, for child items too. Shared by the unit test
 * (rowbinary.test.ts) and the servers' comparison (test/integration/sinks-rowbinary.test.ts).
 */
import type { AvroRecordSchema, ResourceName } from '../../../schemas/index.ts';
import { valueSchema } from '../../../schemas/index.ts';
import { SAMPLES } from '../schemas/samples.ts';

type Rec = Record<string, unknown>;

const STRINGS = [
  '',
  'tab\there\nnew line\\back\\\\slash \'q\' "dq" \r\u0000nul',
  '\u00e9\u{1F600}\u4e2d\u6587 ok',
  'N',
  '\\N',
  // Longer than 127 bytes, so that its length takes two LEB128 bytes; 16,400 bytes takes three.
  `long\t${'\u00e9x'.repeat(70)}`,
  'y'.repeat(16_400),
];
const INTS = [-(2 ** 31), 2 ** 31 - 1, 0, -1];
const LONGS: unknown[] = [
  2n ** 63n - 1n,
  -(2n ** 63n),
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  0,
  -1,
  2 ** 53 + 2,
];
// Not denormals: 18.16's JSONEachRow parser reads -5e-324 as -0, which RowBinary would store exactly.
const DOUBLES = [
  1e308,
  -2.2250738585072014e-308,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0.1,
  123456789.125,
];
const FLOATS = [
  Math.fround(3.4e38),
  Math.fround(-1.5e-45),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Math.fround(0.1),
];
const STRING_ARRAYS = [[], ['a\tb', '', '\\N', '\u{1F600}'], ['x']];

function pick<T>(list: readonly T[], k: number): T {
  return list[k % list.length] as T;
}

/** An edge value for an Avro type, the k-th of its kind; undefined to keep the sample's. */
function edge(type: unknown, k: number, keepTimes: boolean): unknown {
  if (Array.isArray(type)) {
    // ["null", T]: null every third variant.
    if (k % 3 === 1) return null;
    return edge(
      type.find((t) => t !== 'null'),
      k,
      keepTimes,
    );
  }
  if (typeof type === 'object' && type !== null) {
    const o = type as { type: unknown; logicalType?: string; items?: unknown; symbols?: string[] };
    // Timestamps feed the _dt columns (DateTime64 on current servers): the sample's values stay.
    if (o.logicalType) return keepTimes ? undefined : 0;
    if (o.type === 'enum') return pick(o.symbols ?? [], k);
    if (o.type === 'array') {
      const items = o.items;
      if (
        typeof items === 'object' &&
        items !== null &&
        !Array.isArray(items) &&
        (items as { type: string }).type === 'record'
      )
        return undefined; // child tables: varied item by item below
      if (items === 'string') return pick(STRING_ARRAYS, k);
      if (items === 'long') return pick([[], [2n ** 63n - 1n, -1, 0]], k);
      if (items === 'double') return pick([[], [Number.NaN, -0.5, 1e-300]], k);
      if (items === 'boolean') return pick([[], [true, false]], k);
      return undefined;
    }
    return edge(o.type, k, keepTimes);
  }
  switch (type) {
    case 'string':
      return pick(STRINGS, k);
    case 'int':
      return pick(INTS, k);
    case 'long':
      return pick(LONGS, k);
    case 'double':
      return pick(DOUBLES, k);
    case 'float':
      return pick(FLOATS, k);
    case 'boolean':
      return k % 2 === 0;
  }
  return undefined;
}

/** Fields the variants leave alone: the envelope's hash (keys stand in from it) and key columns. */
const KEEP = new Set(['_content_hash', '_raw_json']);

function vary(schema: AvroRecordSchema, base: Rec, k: number, keys: ReadonlySet<string>): Rec {
  const out: Rec = { ...base };
  for (const f of schema.fields) {
    if (KEEP.has(f.name) || keys.has(f.name)) continue;
    const t = f.type as unknown;
    const arr = Array.isArray(t) ? undefined : (t as { type?: string; items?: unknown });
    if (
      arr?.type === 'array' &&
      typeof arr.items === 'object' &&
      (arr.items as { type?: string }).type === 'record'
    ) {
      const items = (base[f.name] as Rec[] | undefined) ?? [];
      out[f.name] = items.map((item, j) => vary(arr.items as AvroRecordSchema, item, k + j, new Set()));
      continue;
    }
    const v = edge(t, k + f.name.length, true);
    if (v !== undefined) out[f.name] = v;
  }
  return out;
}

/** The records to transcode for a resource: its samples, then variants of each. */
export function edgeRecords(resource: ResourceName, keys: readonly string[]): Rec[] {
  const schema = valueSchema(resource);
  const samples = SAMPLES[resource] as Rec[];
  const out: Rec[] = [...samples];
  const keySet = new Set(keys);
  samples.forEach((s, i) => {
    for (let k = 0; k < 6; k++) {
      const v = vary(schema, s, k + i, keySet);
      // Distinct keys, so that a table of them keeps every row (string or integer ids).
      // A keyless record stands in by its content hash: another hash per variant keeps them apart.
      if (keys.some((key) => s[key] === null) && typeof s['_content_hash'] === 'string')
        v['_content_hash'] = `${k}${(s['_content_hash'] as string).slice(1)}`;
      for (const key of keys) {
        const id = s[key];
        if (typeof id === 'string') v[key] = `${id}~${k}`;
        else if (typeof id === 'number') v[key] = id - 1 - k;
      }
      out.push(v);
    }
  });
  return out;
}

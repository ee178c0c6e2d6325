import avro from 'avsc';
import { logicalTypeOf } from '../schemas/index.ts';
import { stringifyJson } from './instabase/json.ts';

/**
 * Maps validated API JSON onto an Avro record type by field name, so one generic mapper serves every
 * resource. Values are converted only where nothing is lost: a number or boolean for a string field
 * becomes its text, an object becomes its JSON text, an integral numeric string for a long stays exact.
 * Anything else is reported with its path, so the record is dead-lettered instead of published wrong.
 *
 * A spec-valid long that its field's logical type cannot represent (a timestamp outside the years
 * 1–9999) is published as null where the field is nullable, and its path is reported to the caller,
 * which notes it in the record (`_nulled_fields`) and counts it: Confluent's Python and .NET clients
 * turn such a value into a calendar date and fail on the whole message, which would make one record a
 * poison pill for every consumer of the topic. `_raw_json` still holds the value as sent.
 *
 * A string with a lone UTF-16 surrogate (JSON allows the escape "\ud800") is treated the same way: Avro
 * strings are UTF-8, which cannot encode it; avsc writes it as invalid UTF-8 that Python's decoder
 * rejects. `_raw_json` keeps it escaped, so nothing is lost.
 */

export class MappingError extends Error {
  constructor(readonly problems: string[]) {
    super(`record does not fit its Avro schema: ${problems.join('; ')}`);
    this.name = 'MappingError';
  }
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const describe = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v));

// 0001-01-01T00:00:00.000Z and 10000-01-01T00:00:00.000Z in ms since the epoch: the calendar range of
// Python's datetime and .NET's DateTime (Java's Instant and JavaScript's Date reach further).
const YEAR_1_MS = -62_135_596_800_000n;
const YEAR_10000_MS = 253_402_300_800_000n;

/**
 * The inclusive range of longs each logical type represents faithfully in every mainstream Avro client.
 * A schema may only use logical types listed here (test/unit/schemas enforces it), so a new one cannot
 * slip past this check. timestamp-nanos spans 1677–2262 over the whole int64 range, so nothing is out.
 */
export const LOGICAL_LONG_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  'timestamp-millis': [YEAR_1_MS, YEAR_10000_MS - 1n],
  'local-timestamp-millis': [YEAR_1_MS, YEAR_10000_MS - 1n],
  'timestamp-micros': [YEAR_1_MS * 1000n, YEAR_10000_MS * 1000n - 1n],
  'local-timestamp-micros': [YEAR_1_MS * 1000n, YEAR_10000_MS * 1000n - 1n],
  'timestamp-nanos': [INT64_MIN, INT64_MAX],
  'local-timestamp-nanos': [INT64_MIN, INT64_MAX],
  // Time of day in µs: fastavro and Java's LocalTime refuse anything outside one day.
  'time-micros': [0n, 86_400_000_000n - 1n],
};

/** What one mapping collects: misfits (the record is dead-lettered) and paths published as null. */
interface Findings {
  problems: string[];
  nulled: string[];
}

interface Branching {
  types: avro.Type[];
}
interface Logical {
  underlyingType: avro.Type;
}

function mapValue(type: avro.Type, value: unknown, path: string, found: Findings, nullable = false): unknown {
  const { problems } = found;
  const kind = type.typeName;
  if (kind.startsWith('union')) {
    const branches = (type as unknown as Branching).types;
    if (value === null || value === undefined) {
      if (branches.some((t) => t.typeName === 'null')) return null;
      problems.push(`${path}: missing`);
      return undefined;
    }
    const nonNull = branches.filter((t) => t.typeName !== 'null');
    if (nonNull.length !== 1 || kind === 'union:wrapped') {
      problems.push(`${path}: only ["null", T] unions are supported`);
      return undefined;
    }
    return mapValue(nonNull[0]!, value, path, found, true);
  }
  if (kind.startsWith('logical:'))
    return mapValue((type as unknown as Logical).underlyingType, value, path, found, nullable);
  if (value === undefined || value === null) {
    if (kind === 'null') return null;
    problems.push(`${path}: missing (expected ${kind})`);
    return undefined;
  }
  switch (kind) {
    case 'string':
      if (typeof value === 'string') {
        if (isWellFormed(value)) return value;
        if (nullable) {
          found.nulled.push(path);
          return null;
        }
        problems.push(`${path}: ${describe(value)} has a lone surrogate, which UTF-8 cannot encode`);
        return undefined;
      }
      if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
        return String(value);
      return stringifyJson(value);
    case 'long':
    case 'abstract:long': {
      const n = exactLong(value);
      if (n === undefined) {
        problems.push(`${path}: ${describe(value)} is not an exact long`);
        return undefined;
      }
      const logical = logicalTypeOf(type);
      const range = logical === undefined ? undefined : LOGICAL_LONG_RANGES[logical];
      if (range && (BigInt(n) < range[0] || BigInt(n) > range[1])) {
        if (nullable) {
          found.nulled.push(path);
          return null;
        }
        problems.push(`${path}: ${describe(value)} is outside what ${logical} can represent`);
        return undefined;
      }
      return n;
    }
    case 'int':
      if (typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)
        return value;
      problems.push(`${path}: ${describe(value)} is not an exact int`);
      return undefined;
    case 'double':
    case 'float':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      problems.push(`${path}: ${describe(value)} is not a finite number`);
      return undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      problems.push(`${path}: ${describe(value)} is not a boolean`);
      return undefined;
    case 'array': {
      if (!Array.isArray(value)) {
        problems.push(`${path}: expected an array`);
        return undefined;
      }
      const items = (type as avro.types.ArrayType).itemsType;
      return value.map((v, i) => mapValue(items, v, `${path}[${i}]`, found));
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${path}: expected an object`);
        return undefined;
      }
      const values = (type as avro.types.MapType).valuesType as avro.Type;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out[k] = mapValue(values, v, `${path}.${k}`, found);
      }
      return out;
    }
    case 'enum': {
      const symbols = (type as avro.types.EnumType).symbols;
      if (typeof value === 'string' && symbols.includes(value)) return value;
      problems.push(`${path}: ${describe(value)} is not one of ${symbols.join(', ')}`);
      return undefined;
    }
    case 'record':
    case 'error':
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${path}: expected an object`);
        return undefined;
      }
      return mapRecord(type as avro.types.RecordType, value as Record<string, unknown>, path, found);
    default:
      problems.push(`${path}: unsupported Avro type ${kind}`);
      return undefined;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string is valid Unicode, i.e. encodes to UTF-8 and back unchanged. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** An int64 as the exact int64 type wants it (a number while safe, else a bigint), or undefined. */
function exactLong(value: unknown): number | bigint | undefined {
  // Integers beyond 2^53 arrive as bigint from the lossless JSON parser and stay exact.
  if (typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d{1,19}$/.test(value.trim())) {
    const n = BigInt(value.trim());
    if (n >= INT64_MIN && n <= INT64_MAX) return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  }
  return undefined;
}

function acceptsNull(type: avro.Type): boolean {
  if (type.typeName === 'null') return true;
  return (
    type.typeName.startsWith('union') &&
    (type as unknown as Branching).types.some((t) => t.typeName === 'null')
  );
}

function mapRecord(
  type: avro.types.RecordType,
  source: Record<string, unknown>,
  path: string,
  found: Findings,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fields) {
    const value = source[field.name];
    const fieldPath = path ? `${path}.${field.name}` : field.name;
    // An absent value, or a null where the schema has no null branch, takes the field's default:
    // the API leaves out or nulls lists it documents as arrays.
    const fallback =
      value === undefined || (value === null && !acceptsNull(field.type))
        ? (field.defaultValue() as unknown)
        : undefined;
    out[field.name] = fallback !== undefined ? fallback : mapValue(field.type, value, fieldPath, found);
  }
  return out;
}

export interface MappedRecord {
  record: Record<string, unknown>;
  /** Paths (e.g. `created_at_ms`, `fields[2].at`) published as null: their logical type cannot hold them. */
  nulled: string[];
}

/**
 * The Avro record for `source` and the paths it had to publish as null, or a MappingError listing every
 * field that does not fit.
 */
export function mapToAvro(type: avro.Type, source: Record<string, unknown>): MappedRecord {
  if (type.typeName !== 'record') throw new TypeError('mapToAvro needs a record type');
  const found: Findings = { problems: [], nulled: [] };
  const record = mapRecord(type as avro.types.RecordType, source, '', found);
  if (found.problems.length) throw new MappingError(found.problems);
  return { record, nulled: found.nulled };
}

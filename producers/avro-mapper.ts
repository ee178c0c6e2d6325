import avro from 'avsc';
import { stringifyJson } from './instabase/json.ts';

/**
 * Maps validated API JSON onto an Avro record type by field name, so one generic mapper serves every
 * resource. Values are converted only where nothing is lost: a number or boolean for a string field
 * becomes its text, an object becomes its JSON text, an integral numeric string for a long stays exact.
 * Anything else is reported with its path, so the record is dead-lettered instead of published wrong.
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

interface Branching {
  types: avro.Type[];
}
interface Logical {
  underlyingType: avro.Type;
}

function mapValue(type: avro.Type, value: unknown, path: string, problems: string[]): unknown {
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
    return mapValue(nonNull[0]!, value, path, problems);
  }
  if (kind.startsWith('logical:'))
    return mapValue((type as unknown as Logical).underlyingType, value, path, problems);
  if (value === undefined || value === null) {
    if (kind === 'null') return null;
    problems.push(`${path}: missing (expected ${kind})`);
    return undefined;
  }
  switch (kind) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
        return String(value);
      return stringifyJson(value);
    case 'long':
    case 'abstract:long':
      // Integers beyond 2^53 arrive as bigint from the lossless JSON parser and stay exact.
      if (typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX) return value;
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (typeof value === 'string' && /^-?\d{1,19}$/.test(value.trim())) {
        const n = BigInt(value.trim());
        if (n >= INT64_MIN && n <= INT64_MAX) return Number.isSafeInteger(Number(n)) ? Number(n) : n;
      }
      problems.push(`${path}: ${describe(value)} is not an exact long`);
      return undefined;
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
      return value.map((v, i) => mapValue(items, v, `${path}[${i}]`, problems));
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${path}: expected an object`);
        return undefined;
      }
      const values = (type as avro.types.MapType).valuesType as avro.Type;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out[k] = mapValue(values, v, `${path}.${k}`, problems);
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
      return mapRecord(type as avro.types.RecordType, value as Record<string, unknown>, path, problems);
    default:
      problems.push(`${path}: unsupported Avro type ${kind}`);
      return undefined;
  }
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
  problems: string[],
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
    out[field.name] = fallback !== undefined ? fallback : mapValue(field.type, value, fieldPath, problems);
  }
  return out;
}

/** The Avro record for `source`, or a MappingError listing every field that does not fit. */
export function mapToAvro(type: avro.Type, source: Record<string, unknown>): Record<string, unknown> {
  if (type.typeName !== 'record') throw new TypeError('mapToAvro needs a record type');
  const problems: string[] = [];
  const record = mapRecord(type as avro.types.RecordType, source, '', problems);
  if (problems.length) throw new MappingError(problems);
  return record;
}

// The Avro → ClickHouse type mapping, written once. With LEGACY_FEATURES (the default, and what 18.16
// gets) it targets the intersection of ClickHouse 18.16 and current releases: no DateTime64, Map, JSON,
// LowCardinality, Decimal or Bool. A newer server's features (features.ts) add Bool for booleans and
// LowCardinality for the enum-like columns. Values are sent the same way for either spelling.
import type { AvroField, AvroRecordSchema, AvroSchema } from '../../schemas/index.ts';
import { LEGACY_FEATURES, type FeatureFlags } from './features.ts';

/**
 * Columns with few distinct values (statuses, kinds, the envelope's endpoint and context), stored as
 * LowCardinality(String) where the server has it. Avro enums are enum-like by definition.
 */
export const LOW_CARDINALITY_COLUMNS: ReadonlySet<string> = new Set([
  'status',
  'state',
  'log_type',
  'kind',
  'content_type',
  '_source_endpoint',
  '_ib_context',
  '_topic',
]);

/** The envelope's deletion flag stays UInt8 everywhere: ReplacingMergeTree's is_deleted column needs it. */
const KEEP_UINT8 = new Set(['_deleted']);

/**
 * How rows.ts turns a decoded Avro value into a JSONEachRow value. Numeric codes so that the per-value
 * switch in the row mapper stays cheap.
 */
export const Convert = {
  /** Strings, and anything JSON.stringify already writes the way ClickHouse parses it. */
  None: 0,
  /** int64 beyond ±2^53 (an unsafe number or a bigint) becomes a decimal string. */
  Int64: 1,
  /** NaN and ±Infinity become 'nan' / 'inf' / '-inf' (JSON has no spelling for them). */
  Float64: 2,
  /** true/false become 1/0, which every ClickHouse version parses into UInt8. */
  Bool: 3,
  /** An array whose elements need no conversion; a null (optional) array becomes []. */
  Array: 4,
  ArrayInt64: 5,
  ArrayFloat64: 6,
  ArrayBool: 7,
} as const;
export type Convert = (typeof Convert)[keyof typeof Convert];

/** Unit of a logical-type timestamp long, which gets a DateTime ALIAS column for dashboards. */
export type TimeUnit = 'ms' | 'ns';

export interface ColumnMapping {
  readonly shape: 'column';
  /** ClickHouse type, in the spelling ClickHouse itself reports (system.columns). */
  readonly type: string;
  readonly nullable: boolean;
  readonly convert: Convert;
  readonly timeUnit?: TimeUnit;
}

export interface ChildMapping {
  readonly shape: 'child';
  /** The array's item record; each item becomes one row of a child table. */
  readonly record: AvroRecordSchema;
}

export type FieldMapping = ColumnMapping | ChildMapping;

export class UnsupportedSchemaError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`field ${field}: ${reason}`);
    this.name = 'UnsupportedSchemaError';
  }
}

interface Scalar {
  readonly type: string;
  readonly convert: Convert;
  readonly timeUnit?: TimeUnit;
  readonly enumLike?: boolean;
}

type TypeFeatures = Pick<FeatureFlags, 'bool' | 'lowCardinality'>;

/** The spelling of a scalar on a server with these features, as system.columns reports it. */
function spell(name: string, s: Scalar, nullable: boolean, f: TypeFeatures): string {
  let type = s.type;
  if (f.bool && s.convert === Convert.Bool && !KEEP_UINT8.has(name)) type = 'Bool';
  const wrapped = nullable ? `Nullable(${type})` : type;
  if (f.lowCardinality && type === 'String' && (s.enumLike || LOW_CARDINALITY_COLUMNS.has(name))) {
    return `LowCardinality(${wrapped})`;
  }
  return wrapped;
}

const PRIMITIVES: Readonly<Record<string, Scalar>> = {
  boolean: { type: 'UInt8', convert: Convert.Bool },
  int: { type: 'Int32', convert: Convert.None },
  long: { type: 'Int64', convert: Convert.Int64 },
  float: { type: 'Float32', convert: Convert.Float64 },
  double: { type: 'Float64', convert: Convert.Float64 },
  string: { type: 'String', convert: Convert.None },
};

const TIME_UNITS: Readonly<Record<string, TimeUnit>> = {
  'timestamp-millis': 'ms',
  'timestamp-nanos': 'ns',
};

const ARRAY_OF: Readonly<Record<number, Convert>> = {
  [Convert.None]: Convert.Array,
  [Convert.Int64]: Convert.ArrayInt64,
  [Convert.Float64]: Convert.ArrayFloat64,
  [Convert.Bool]: Convert.ArrayBool,
};

function isObject(s: AvroSchema): s is { readonly type: AvroSchema; readonly [attr: string]: unknown } {
  return typeof s === 'object' && !Array.isArray(s);
}

const ENUM: Scalar = { ...PRIMITIVES.string!, enumLike: true };

/** A primitive, an enum (→ String) or a long/int with a logical type; undefined for anything else. */
function scalar(s: AvroSchema): Scalar | undefined {
  if (typeof s === 'string') return PRIMITIVES[s];
  if (!isObject(s)) return undefined;
  if (s.type === 'enum') return ENUM;
  if (typeof s.type !== 'string') return undefined;
  const base = PRIMITIVES[s.type];
  const unit = typeof s.logicalType === 'string' ? TIME_UNITS[s.logicalType] : undefined;
  if (base && unit && s.type === 'long') return { ...base, timeUnit: unit };
  return base;
}

/** ["null", T] or [T, "null"] → T; T itself when not a union; undefined for any other union. */
function unwrapNullable(s: AvroSchema): { inner: AvroSchema; nullable: boolean } | undefined {
  if (!Array.isArray(s)) return { inner: s, nullable: false };
  const rest = s.filter((b) => b !== 'null');
  const inner = rest[0];
  if (s.length !== 2 || rest.length !== 1 || inner === undefined) return undefined;
  return { inner, nullable: true };
}

function isRecord(s: AvroSchema): s is AvroSchema & AvroRecordSchema {
  return isObject(s) && s.type === 'record';
}

/**
 * Maps one record field. Supported: primitives, enums, nullable primitives, arrays of (nullable)
 * primitives, optional arrays (stored as Array, null → []) and arrays of records (child tables).
 * Anything else (maps, bytes, fixed, nested records, wider unions) throws UnsupportedSchemaError:
 * a new schema that needs one of those must extend this mapping first.
 */
export function mapField(field: AvroField, features: TypeFeatures = LEGACY_FEATURES): FieldMapping {
  const u = unwrapNullable(field.type);
  if (!u) throw new UnsupportedSchemaError(field.name, 'only ["null", T] unions are supported');
  const s = scalar(u.inner);
  if (s) {
    return {
      shape: 'column',
      type: spell(field.name, s, u.nullable, features),
      nullable: u.nullable,
      convert: s.convert,
      ...(s.timeUnit ? { timeUnit: s.timeUnit } : {}),
    };
  }
  if (isObject(u.inner) && u.inner.type === 'array') {
    const items = u.inner.items as AvroSchema;
    if (isRecord(items)) {
      if (u.nullable)
        throw new UnsupportedSchemaError(field.name, 'an array of records must not be nullable');
      return { shape: 'child', record: items };
    }
    const iu = unwrapNullable(items);
    const is = iu ? scalar(iu.inner) : undefined;
    if (!iu || !is) throw new UnsupportedSchemaError(field.name, 'array items must be primitives or records');
    const type = spell(field.name, is, iu.nullable, features);
    // An optional array maps to a plain Array: ClickHouse has no Nullable(Array). The difference
    // between absent and empty survives in _raw_json.
    return {
      shape: 'column',
      type: `Array(${type})`,
      nullable: false,
      convert: ARRAY_OF[is.convert] ?? Convert.Array,
    };
  }
  throw new UnsupportedSchemaError(field.name, `unsupported type ${JSON.stringify(u.inner)}`);
}

/**
 * Canonical spelling of a ClickHouse type name, for comparing an existing table (system.columns or
 * DESCRIBE, any version) with the derived one. Whitespace is collapsed, and storage-only or display-only
 * differences are dropped: LowCardinality(T) → T, DateTime('tz') → DateTime, DateTime64(p, 'tz') →
 * DateTime64(p), Bool → UInt8 (inserts of 0/1 behave the same).
 */
export function normalizeClickHouseType(type: string): string {
  return canonical(collapseWhitespace(type.trim()));
}

/** Drops whitespace outside quotes, except one space between two words (named tuple elements). */
function collapseWhitespace(type: string): string {
  let out = '';
  let pendingSpace = false;
  for (let i = 0; i < type.length; i++) {
    const c = type.charAt(i);
    if (c === "'" || c === '"' || c === '`') {
      const end = closingQuote(type, i);
      if (pendingSpace && /\w$/.test(out)) out += ' ';
      pendingSpace = false;
      out += type.slice(i, end + 1);
      i = end;
    } else if (/\s/.test(c)) {
      pendingSpace = true;
    } else {
      if (pendingSpace && /\w$/.test(out) && /\w/.test(c)) out += ' ';
      pendingSpace = false;
      out += c;
    }
  }
  return out;
}

function closingQuote(s: string, open: number): number {
  const q = s.charAt(open);
  for (let i = open + 1; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '\\') i++;
    else if (c === q) return i;
  }
  return s.length - 1;
}

/** Splits "A(x,B(y,z)),'q,r'" at top-level commas. */
function splitArgs(s: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === "'" || c === '"' || c === '`') i = closingQuote(s, i);
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      args.push(s.slice(from, i));
      from = i + 1;
    }
  }
  args.push(s.slice(from));
  return args;
}

function canonical(t: string): string {
  const m = /^(\w+)\((.*)\)$/s.exec(t);
  if (!m) {
    if (t === 'Bool') return 'UInt8';
    // A named tuple element "name Type" keeps its name.
    const named = /^(\w+) (.+)$/s.exec(t);
    return named ? `${named[1]} ${canonical(named[2] as string)}` : t;
  }
  const name = m[1] as string;
  const args = splitArgs(m[2] as string);
  if (name === 'LowCardinality' && args.length === 1) return canonical(args[0] as string);
  if (name === 'DateTime' && args.every((a) => a.startsWith("'"))) return 'DateTime';
  if (name === 'DateTime64' && args.length === 2) return `DateTime64(${args[0]})`;
  return `${name}(${args.map(canonical).join(',')})`;
}

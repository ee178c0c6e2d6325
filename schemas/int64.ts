// An exact Avro `long` for avsc.
//
// avsc 5.7.9's built-in long is wrong at the edges that matter here: it rejects ±(2^53 - 1), and for
// negatives below -2^52 it silently flips the sign both when writing and when reading (its zigzag
// arithmetic runs in doubles, where odd values above 2^53 do not exist). Instabase sends int64 values
// down to -9007199254740991 and run timestamps in nanoseconds (~1.8e18), so every reader and writer of
// these schemas uses this type instead, through AVRO_OPTIONS in ./index.ts.
//
// Values: a JS number whenever the int64 is exactly representable as one (always so for |n| <= 2^53),
// otherwise a bigint. Writers may pass either; a number must be an integer inside the int64 range.
import avro from 'avsc';

/** The slice of avsc's internal Tap that the codec needs (lib/utils.js). */
interface Tap {
  buf: Buffer;
  pos: number;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TWO_POW_63 = 2 ** 63;
// Below these bounds the zigzag value stays under 2^31 (integer ops) or 2^53 (exact doubles).
const SMALL = 2 ** 30;
const EXACT = 2 ** 52;

function readInt64(tap: Tap): number | bigint {
  const buf = tap.buf;
  const start = tap.pos;
  let pos = start;
  let b = buf[pos++] ?? 0;
  let n = b & 0x7f;
  let shift = 7;
  while (b & 0x80 && shift < 28) {
    b = buf[pos++] ?? 0;
    n |= (b & 0x7f) << shift;
    shift += 7;
  }
  if (!(b & 0x80)) {
    tap.pos = pos;
    return (n >>> 1) ^ -(n & 1);
  }
  // Up to 7 bytes (49 bits) the zigzag value is an exact double.
  let f = n;
  let scale = 2 ** 28;
  while (b & 0x80 && scale < 2 ** 49) {
    b = buf[pos++] ?? 0;
    f += (b & 0x7f) * scale;
    scale *= 128;
  }
  if (!(b & 0x80)) {
    tap.pos = pos;
    return f % 2 === 1 ? -(f + 1) / 2 : f / 2;
  }
  pos = start;
  let z = 0n;
  let s = 0n;
  do {
    b = buf[pos++] ?? 0;
    z |= BigInt(b & 0x7f) << s;
    s += 7n;
  } while (b & 0x80 && s < 70n);
  tap.pos = pos;
  const v = BigInt.asIntN(64, (z >> 1n) ^ -(z & 1n));
  const asNumber = Number(v);
  return BigInt(asNumber) === v ? asNumber : v;
}

function writeInt64(tap: Tap, val: number | bigint): void {
  const buf = tap.buf;
  let pos = tap.pos;
  if (typeof val === 'number' && val > -SMALL && val < SMALL) {
    let m = val >= 0 ? val << 1 : (~val << 1) | 1;
    while (m > 0x7f) {
      buf[pos++] = (m & 0x7f) | 0x80;
      m >>>= 7;
    }
    buf[pos++] = m;
  } else if (typeof val === 'number' && val > -EXACT && val < EXACT) {
    let f = val >= 0 ? val * 2 : -val * 2 - 1;
    while (f > 0x7f) {
      buf[pos++] = (f % 128) | 0x80;
      f = Math.floor(f / 128);
    }
    buf[pos++] = f;
  } else {
    const n = BigInt(val);
    let z = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
    while (z > 0x7fn) {
      buf[pos++] = Number(z & 0x7fn) | 0x80;
      z >>= 7n;
    }
    buf[pos++] = Number(z);
  }
  tap.pos = pos;
}

export function isInt64(val: unknown): val is number | bigint {
  if (typeof val === 'number') return Number.isInteger(val) && val >= -TWO_POW_63 && val < TWO_POW_63;
  if (typeof val === 'bigint') return val >= INT64_MIN && val <= INT64_MAX;
  return false;
}

type CheckHook = (val: unknown, type: unknown) => void;

// The prototype members mirror avsc's own AbstractLongType: the 'abstract:' type name makes unwrapped
// unions ask _check for the branch (so bigints are accepted), and _deref keeps the schema as "long".
// _read must not use `this`: avsc's resolvers call it detached.
class Int64Type extends avro.types.LongType {
  _read(tap: Tap): number | bigint {
    return readInt64(tap);
  }

  _write(tap: Tap, val: unknown): void {
    if (!isInt64(val)) throw new Error(`invalid "long": ${String(val)}`);
    writeInt64(tap, val);
  }

  _check(val: unknown, _flags: unknown, hook?: CheckHook): boolean {
    const ok = isInt64(val);
    if (!ok && hook) hook(val, this);
    return ok;
  }

  _match(tap1: Tap, tap2: Tap): number {
    return compareInt64(readInt64(tap1), readInt64(tap2));
  }

  _deref(_schema?: unknown, _opts?: { exportAttrs?: boolean }): string | object {
    return 'long';
  }

  override compare(a: number | bigint, b: number | bigint): number {
    return compareInt64(a, b);
  }
}

function compareInt64(a: number | bigint, b: number | bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

Object.defineProperties(Int64Type.prototype, {
  typeName: { value: 'abstract:long' },
  _concreteTypeName: { value: 'long' },
});

const logicalTypes = new WeakMap<avro.Type, string>();

/**
 * A long with a logical type (timestamp-millis, timestamp-nanos) decodes to the same numbers, but keeps
 * its annotation in type.schema({ exportAttrs: true }): the sink derives DateTime columns from it.
 * One subclass per annotation, because avsc freezes type instances in their constructor.
 */
function annotated(logicalType: string): avro.Type {
  class Annotated extends Int64Type {
    override _deref(_schema?: unknown, opts?: { exportAttrs?: boolean }): string | object {
      return opts?.exportAttrs ? { type: 'long', logicalType } : 'long';
    }
  }
  const type = new Annotated();
  logicalTypes.set(type, logicalType);
  return type;
}

/** The logicalType a long was declared with, or undefined; what the producers' mapper range-checks. */
export function logicalTypeOf(type: avro.Type): string | undefined {
  return logicalTypes.get(type);
}

/** The shared plain instance (avsc primitive types are stateless and frozen). */
export const int64Type: avro.Type = new Int64Type();
const annotatedTypes = new Map<string, avro.Type>();

/** avsc typeHook: every `long`, with or without a logicalType, becomes the exact int64 type. */
export function int64TypeHook(schema: unknown): avro.Type | undefined {
  if (schema === 'long') return int64Type;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const { type, logicalType } = schema as { type?: unknown; logicalType?: unknown };
  if (type !== 'long') return undefined;
  if (typeof logicalType !== 'string') return int64Type;
  let t = annotatedTypes.get(logicalType);
  if (!t) {
    t = annotated(logicalType);
    annotatedTypes.set(logicalType, t);
  }
  return t;
}

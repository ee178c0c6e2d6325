// Avro binary → ClickHouse RowBinary, straight from the message bytes: no avsc decode, no row objects,
// no JSON. The profile of the JSON path (test/bench/README.md) spent about half of the sink's CPU time
// building objects (avsc's record, the row), stringifying them, encoding the text to UTF-8 and
// collecting the garbage; here a record is one walk over its bytes that checks each field and writes
// it. Two walks (check, then write) remain where the columns need fields out of order, a key stand-in
// or a null array as empty, and for a child table's items. Strings (`_raw_json` first of all) are
// copied byte for byte; integers and floats change only their width or stay as they are.
//
// Why RowBinary and not TabSeparated: TabSeparated would need every integer and float printed as text
// and every string scanned for characters to escape; RowBinary needs neither, and ClickHouse takes both
// about as fast (test/bench/README.md). RowBinary does depend on the column types being the ones
// written, which they are: the columns are the layout's, applySchema refuses a table whose column types
// differ (normalizeClickHouseType), and what it lets differ (LowCardinality, Bool for UInt8, a DateTime's
// time zone) has the same RowBinary form on every version from 18.16 on.
//
// The insert names its columns: the layout's data and meta columns, as the JSONEachRow rows had as
// keys. Columns of the table that the writer schema lacks (added by a later schema) take their
// defaults, as omitted JSONEachRow fields did (the sinks' DDL gives data columns no DEFAULT expression,
// so both mean the type's default). What differs from the JSON path, only for values no producer
// writes: -0.0 keeps its sign (JSON printed 0), NaN keeps its bits, and a string's bytes are stored as
// they are (avsc would have replaced invalid UTF-8 with U+FFFD).
//
// A message that does not decode (truncated, trailing bytes, a bad union or enum index, an overlong
// varint) throws DecodeError and leaves nothing of itself written, so the sink dead-letters it as
// before; a null key without a content hash to stand in for it throws RowMappingError, as the row
// mapper does.
import { DecodeError } from '../decoder.ts';
import type { ResourceLayout, TableLayout } from './layout.ts';
import { INDEX_COLUMN } from './layout.ts';
import { RowMappingError, keyStandInValue } from './rows.ts';

/** Where rows of one table are appended: a byte buffer with room to write, grown by ensure(). */
export interface ByteSink {
  buf: Buffer;
  pos: number;
  /** Makes room for at least n more bytes at buf[pos]. */
  ensure(n: number): void;
}

/** A ByteSink that can take back a row it was given part of. */
export interface RowSink extends ByteSink {
  /** Notes where the next row begins. */
  mark(): void;
  /** Takes back every byte written since mark(), also those that went into chunks begun since. */
  rewind(): void;
}

/** One table's rows as the transcoder writes them: the sink for a partition, and a row count. */
export interface RowBinaryOut {
  partition(p: number): RowSink;
  rows: number;
}

export interface RowBinaryTable {
  readonly table: string;
  /** The insert's column list, in the order each row's values are written. */
  readonly columns: readonly string[];
}

export interface Transcoder {
  /** Child tables first, the main table last, as RowMapper.tables (children's items land first). */
  readonly tables: readonly RowBinaryTable[];
  /** Whether main rows are written in one walk over the record (createTranscoder says when). */
  readonly oneWalk: boolean;
  /**
   * Appends the rows of the Avro record in `src` from `start` to the end of the buffer, for a message
   * of `partition` at `offset`, to outs[i] (tables[i]). Throws, leaving nothing of the record in outs,
   * when it cannot be decoded or mapped.
   */
  transcode(
    src: Buffer,
    start: number,
    partition: number,
    offset: number,
    ingestedAt: number,
    outs: readonly RowBinaryOut[],
  ): void;
}

// Avro value shapes. Numeric codes keep the per-value switch cheap.
const BOOL = 0;
const INT = 1;
const LONG = 2;
const FLOAT = 3;
const DOUBLE = 4;
const STRING = 5;
const ENUM = 6;
const NULLABLE = 7;
const ARRAY = 8;
const RECORD = 9;

interface Shape {
  readonly k: number;
  /** NULLABLE: the branch index of null, and the other branch. */
  readonly nullIndex?: number;
  readonly inner?: Shape;
  /** ARRAY: the items. */
  readonly item?: Shape;
  /** ENUM: each symbol as UTF-8. */
  readonly symbols?: readonly Buffer[];
  /** RECORD: the fields, in order. */
  readonly fields?: readonly { readonly name: string; readonly shape: Shape }[];
}

type Json = unknown;

/**
 * A shape with every property set, in one order: shapes of different property sets would give V8 one
 * hidden class each, and the per-value reads of skip() and copy() would turn megamorphic (#14).
 */
function makeShape(k: number, o: Omit<Partial<Shape>, 'k'> = {}): Shape {
  return { k, nullIndex: o.nullIndex, inner: o.inner, item: o.item, symbols: o.symbols, fields: o.fields };
}

function shapeOf(s: Json, where: string): Shape {
  if (typeof s === 'string') {
    const k = { boolean: BOOL, int: INT, long: LONG, float: FLOAT, double: DOUBLE, string: STRING }[s];
    if (k === undefined) throw new Error(`${where}: unsupported Avro type ${s}`);
    return makeShape(k);
  }
  if (Array.isArray(s)) {
    const nullIndex = s.indexOf('null');
    if (s.length !== 2 || nullIndex < 0) throw new Error(`${where}: only ["null", T] unions are supported`);
    return makeShape(NULLABLE, { nullIndex, inner: shapeOf(s[1 - nullIndex], where) });
  }
  if (typeof s === 'object' && s !== null) {
    const o = s as { type: Json; items?: Json; symbols?: string[]; fields?: { name: string; type: Json }[] };
    if (o.type === 'enum') return makeShape(ENUM, { symbols: (o.symbols ?? []).map((x) => Buffer.from(x)) });
    if (o.type === 'array') return makeShape(ARRAY, { item: shapeOf(o.items, `${where}[]`) });
    if (o.type === 'record') {
      return makeShape(RECORD, {
        fields: (o.fields ?? []).map((f) => ({ name: f.name, shape: shapeOf(f.type, `${where}.${f.name}`) })),
      });
    }
    return shapeOf(o.type, where);
  }
  throw new Error(`${where}: unsupported Avro type ${JSON.stringify(s)}`);
}

/** The decode cursor: one per transcoder, reused for every record. */
interface Cursor {
  buf: Buffer;
  pos: number;
  end: number;
}

function malformed(why: string): never {
  throw new DecodeError('avro-decode-failed', why);
}

/**
 * A zigzag varint that must fit a small non-negative or negative count (lengths, counts, indices):
 * up to 5 bytes, |n| < 2^31.
 */
function readSmall(c: Cursor): number {
  const buf = c.buf;
  let pos = c.pos;
  let n = 0;
  let shift = 0;
  for (;;) {
    if (pos >= c.end) malformed('truncated buffer');
    const b = buf[pos++]!;
    if (shift === 28) {
      if (b > 0x0f) malformed('a length or index out of range');
      n += b * 2 ** 28;
      break;
    }
    n |= (b & 0x7f) << shift;
    if (!(b & 0x80)) {
      n >>>= 0;
      break;
    }
    shift += 7;
  }
  c.pos = pos;
  return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
}

/** Skips a varint of at most 10 bytes (a long). */
function skipVarint(c: Cursor): void {
  const buf = c.buf;
  let pos = c.pos;
  const stop = Math.min(c.end, pos + 10);
  while (pos < stop) {
    if (!(buf[pos++]! & 0x80)) {
      c.pos = pos;
      return;
    }
  }
  malformed(pos >= c.end ? 'truncated buffer' : 'a varint longer than 10 bytes');
}

/**
 * The item count of an Avro array block (0 ends the array). A negative count is followed by the
 * block's size in bytes, which is skipped.
 */
function readBlockCount(c: Cursor): number {
  const n = readSmall(c);
  if (n >= 0) return n;
  skipVarint(c);
  return -n;
}

/** Skips one value of `shape`, checking it; an array also skips its items. */
function skip(c: Cursor, shape: Shape): void {
  switch (shape.k) {
    case BOOL:
      if (c.pos + 1 > c.end) malformed('truncated buffer');
      c.pos += 1;
      return;
    case INT:
      // Five bytes at most, within ±2^31: anything else is not an int.
      readSmall(c);
      return;
    case LONG:
      skipVarint(c);
      return;
    case FLOAT:
      if (c.pos + 4 > c.end) malformed('truncated buffer');
      c.pos += 4;
      return;
    case DOUBLE:
      if (c.pos + 8 > c.end) malformed('truncated buffer');
      c.pos += 8;
      return;
    case STRING: {
      const len = readSmall(c);
      if (len < 0) malformed('a negative string length');
      if (c.pos + len > c.end) malformed('truncated buffer');
      c.pos += len;
      return;
    }
    case ENUM: {
      const i = readSmall(c);
      if (i < 0 || i >= shape.symbols!.length) malformed(`invalid enum index ${i}`);
      return;
    }
    case NULLABLE: {
      const i = readSmall(c);
      if (i !== 0 && i !== 1) malformed(`invalid union index ${i}`);
      if (i !== shape.nullIndex) skip(c, shape.inner!);
      return;
    }
    case ARRAY: {
      for (;;) {
        const n = readBlockCount(c);
        if (n === 0) return;
        for (let i = 0; i < n; i++) skip(c, shape.item!);
      }
    }
    case RECORD:
      for (const f of shape.fields!) skip(c, f.shape);
      return;
  }
}

/** Unsigned LEB128, as RowBinary prefixes strings and arrays. */
function writeLeb(out: ByteSink, n: number): void {
  const buf = out.buf;
  let pos = out.pos;
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  out.pos = pos;
}

/**
 * Copies src[from, from + n) to the sink. Buffer#copy makes a Uint8Array view of the source for every
 * call on Node 20 (its _copyActual), which showed as 8 % of the sink's time and more garbage: most
 * values are a few bytes, so those go byte by byte, and only long ones (`_raw_json`) take the native copy.
 */
function copyBytes(src: Buffer, from: number, n: number, out: ByteSink): void {
  const dst = out.buf;
  let pos = out.pos;
  if (n > 64) {
    src.copy(dst, pos, from, from + n);
    out.pos = pos + n;
    return;
  }
  const end = from + n;
  for (let i = from; i < end; i++) dst[pos++] = src[i]!;
  out.pos = pos;
}

/** Reads a checked long (zigzag varint, ≤ 10 bytes) and writes it as Int64 little-endian. */
function copyLong(c: Cursor, out: ByteSink): void {
  const buf = c.buf;
  let pos = c.pos;
  // The zigzag value's low and high 32 bits, filled 7 bits at a time.
  let lo = 0;
  let hi = 0;
  let b = buf[pos++]!;
  lo = b & 0x7f;
  if (b & 0x80) {
    b = buf[pos++]!;
    lo |= (b & 0x7f) << 7;
    if (b & 0x80) {
      b = buf[pos++]!;
      lo |= (b & 0x7f) << 14;
      if (b & 0x80) {
        b = buf[pos++]!;
        lo |= (b & 0x7f) << 21;
        if (b & 0x80) {
          b = buf[pos++]!;
          lo |= (b & 0x0f) << 28;
          hi = (b & 0x7f) >>> 4;
          let shift = 3;
          while (b & 0x80) {
            b = buf[pos++]!;
            hi |= (b & 0x7f) << shift;
            shift += 7;
          }
        }
      }
    }
  }
  c.pos = pos;
  // Un-zigzag across the 64 bits: (z >>> 1) ^ -(z & 1).
  const neg = lo & 1;
  let vlo = (lo >>> 1) | (hi << 31);
  let vhi = hi >>> 1;
  if (neg) {
    vlo = ~vlo;
    vhi = ~vhi;
  }
  out.ensure(8);
  out.buf.writeInt32LE(vlo | 0, out.pos);
  out.buf.writeInt32LE(vhi | 0, out.pos + 4);
  out.pos += 8;
}

/** Writes the checked value at the cursor in its column's RowBinary form. */
function copy(c: Cursor, shape: Shape, out: ByteSink): void {
  const buf = c.buf;
  switch (shape.k) {
    case BOOL:
      out.ensure(1);
      // avsc reads any non-zero byte as true.
      out.buf[out.pos++] = buf[c.pos++] ? 1 : 0;
      return;
    case INT: {
      const v = readSmall(c);
      out.ensure(4);
      out.buf.writeInt32LE(v, out.pos);
      out.pos += 4;
      return;
    }
    case LONG:
      copyLong(c, out);
      return;
    case FLOAT:
      out.ensure(4);
      copyBytes(buf, c.pos, 4, out);
      c.pos += 4;
      return;
    case DOUBLE:
      out.ensure(8);
      copyBytes(buf, c.pos, 8, out);
      c.pos += 8;
      return;
    case STRING: {
      const len = readSmall(c);
      out.ensure(len + 5);
      writeLeb(out, len);
      copyBytes(buf, c.pos, len, out);
      c.pos += len;
      return;
    }
    case ENUM: {
      const symbol = shape.symbols![readSmall(c)]!;
      out.ensure(symbol.length + 5);
      writeLeb(out, symbol.length);
      copyBytes(symbol, 0, symbol.length, out);
      return;
    }
    case NULLABLE: {
      // RowBinary's Nullable: a byte, 1 for NULL, else 0 and the value.
      const isNull = readSmall(c) === shape.nullIndex;
      out.ensure(1);
      out.buf[out.pos++] = isNull ? 1 : 0;
      if (!isNull) copy(c, shape.inner!, out);
      return;
    }
    case ARRAY: {
      // RowBinary wants the item count first; Avro gives it per block, so count them first.
      const from = c.pos;
      let count = 0;
      for (;;) {
        const n = readBlockCount(c);
        if (n === 0) break;
        count += n;
        for (let i = 0; i < n; i++) skip(c, shape.item!);
      }
      c.pos = from;
      out.ensure(5);
      writeLeb(out, count);
      for (;;) {
        const n = readBlockCount(c);
        if (n === 0) break;
        for (let i = 0; i < n; i++) copy(c, shape.item!, out);
      }
      return;
    }
  }
  throw new Error(`no RowBinary form for Avro shape ${shape.k}`);
}

/**
 * copy() for a value not checked yet: each check of skip(), then the write, in one walk. An array is
 * walked twice anyway (its count comes first in RowBinary), so it is skipped and then copied.
 */
function checkedCopy(c: Cursor, shape: Shape, out: ByteSink): void {
  switch (shape.k) {
    case BOOL:
    case FLOAT:
    case DOUBLE:
    case ARRAY: {
      const at = c.pos;
      skip(c, shape);
      c.pos = at;
      copy(c, shape, out);
      return;
    }
    case INT:
      copy(c, shape, out);
      return;
    case LONG: {
      const at = c.pos;
      skipVarint(c);
      c.pos = at;
      copyLong(c, out);
      return;
    }
    case STRING: {
      const len = readSmall(c);
      if (len < 0) malformed('a negative string length');
      if (c.pos + len > c.end) malformed('truncated buffer');
      out.ensure(len + 5);
      writeLeb(out, len);
      copyBytes(c.buf, c.pos, len, out);
      c.pos += len;
      return;
    }
    case ENUM: {
      const i = readSmall(c);
      if (i < 0 || i >= shape.symbols!.length) malformed(`invalid enum index ${i}`);
      const symbol = shape.symbols![i]!;
      out.ensure(symbol.length + 5);
      writeLeb(out, symbol.length);
      copyBytes(symbol, 0, symbol.length, out);
      return;
    }
    case NULLABLE: {
      const i = readSmall(c);
      if (i !== 0 && i !== 1) malformed(`invalid union index ${i}`);
      const isNull = i === shape.nullIndex;
      out.ensure(1);
      out.buf[out.pos++] = isNull ? 1 : 0;
      if (!isNull) checkedCopy(c, shape.inner!, out);
      return;
    }
  }
  throw new Error(`no RowBinary form for Avro shape ${shape.k}`);
}

/** How a column gets its value. */
interface ColumnOp {
  readonly name: string;
  /** Data column: the record's field index (a child row's key columns too), else -1. */
  readonly field: number;
  /** Child item column: the item's field index, else -1. */
  readonly itemField: number;
  readonly shape?: Shape;
  /**
   * A key column whose Avro field is ["null", T] but whose column is plain T: a null takes the stand-in
   * from the record's content hash (rows.ts keyStandIn).
   */
  readonly standIn?: 'content-hash' | 'negative-content-hash';
  /** A Nullable field into a plain Array column: null is the empty array. */
  readonly nullAsEmpty?: boolean;
  readonly meta?: 'idx' | 'topic' | 'partition' | 'offset' | 'ingested_at';
}

interface TablePlan {
  readonly table: TableLayout;
  readonly ops: readonly ColumnOp[];
  /** For a child table: the record's array field. */
  readonly childField: number;
  readonly item?: Shape;
}

const META: Readonly<Record<string, ColumnOp['meta']>> = {
  [INDEX_COLUMN]: 'idx',
  _topic: 'topic',
  _partition: 'partition',
  _offset: 'offset',
  _ingested_at: 'ingested_at',
};

/** A column op with every property set, in one order, for the reason makeShape gives. */
function columnOp(o: ColumnOp): ColumnOp {
  return {
    name: o.name,
    field: o.field,
    itemField: o.itemField,
    shape: o.shape,
    standIn: o.standIn,
    nullAsEmpty: o.nullAsEmpty ?? false,
    meta: o.meta,
  };
}

/** The columns a row of `table` is inserted with: its data and meta columns, in layout order. */
export function insertColumns(table: TableLayout): string[] {
  return table.columns.filter((c) => c.source === 'data' || c.source === 'meta').map((c) => c.name);
}

function planTable(
  table: TableLayout,
  record: Shape,
  fieldIndex: ReadonlyMap<string, number>,
  child?: { field: number; item: Shape; keys: ReadonlySet<string> },
): TablePlan {
  const itemIndex = new Map(child?.item.fields!.map((f, i) => [f.name, i]) ?? []);
  const ops = insertColumns(table).map((name): ColumnOp => {
    const col = table.columns.find((c) => c.name === name)!;
    if (col.source === 'meta') {
      const meta = META[name];
      if (!meta) throw new Error(`${table.name}.${name}: no RowBinary writer for this meta column`);
      return columnOp({ name, field: -1, itemField: -1, meta });
    }
    const fromItem = child !== undefined && !child.keys.has(name);
    const index = fromItem ? itemIndex.get(name) : fieldIndex.get(name);
    if (index === undefined) throw new Error(`${table.name}.${name}: not a field of the writer schema`);
    const shape = fromItem ? child.item.fields![index]!.shape : record.fields![index]!.shape;
    const nullableColumn = /^(LowCardinality\()?Nullable\(/.test(col.type);
    // The column's RowBinary form must follow from the Avro shape: a Nullable column for a union, a
    // plain one (key stand-in, optional array) where the layout says so.
    if (shape.k === NULLABLE && !nullableColumn) {
      if (col.standIn)
        return columnOp({ name, field: index, itemField: -1, shape: shape.inner!, standIn: col.standIn });
      if (shape.inner!.k === ARRAY && col.type.startsWith('Array('))
        return columnOp({
          name,
          field: fromItem ? -1 : index,
          itemField: fromItem ? index : -1,
          shape,
          nullAsEmpty: true,
        });
      throw new Error(`${table.name}.${name}: Avro union into non-Nullable ${col.type}`);
    }
    if (shape.k !== NULLABLE && nullableColumn)
      throw new Error(`${table.name}.${name}: Avro non-union into ${col.type}`);
    return fromItem
      ? columnOp({ name, field: -1, itemField: index, shape })
      : columnOp({ name, field: index, itemField: -1, shape });
  });
  return { table, ops, childField: child?.field ?? -1, ...(child ? { item: child.item } : {}) };
}

/**
 * The transcoder for records of `writerSchema` (the JSON of the writer type, as deriveLayout read it)
 * into the tables of `layout`, derived from that same schema; `topic` is written as `_topic`.
 */
export function createTranscoder(
  layout: ResourceLayout,
  writerSchema: unknown,
  topic: string,
  /** Tests only: 2 writes every main row in two walks, as layouts that cannot take one do. */
  walks: 1 | 2 = 1,
): Transcoder {
  const record = shapeOf(writerSchema, layout.table.name);
  if (record.k !== RECORD) throw new Error(`${layout.table.name}: the value schema must be a record`);
  const fields = record.fields!;
  const fieldIndex = new Map(fields.map((f, i) => [f.name, i]));
  const contentHash = fieldIndex.get('_content_hash');
  const keys = new Set(layout.children[0]?.parentKey ?? []);
  const plans: TablePlan[] = layout.children.map((c) => {
    const field = fieldIndex.get(c.field);
    const shape = field === undefined ? undefined : fields[field]!.shape;
    if (field === undefined || shape?.k !== ARRAY || shape.item!.k !== RECORD)
      throw new Error(`${c.name}: ${c.field} is not an array of records in the writer schema`);
    return planTable(c, record, fieldIndex, { field, item: shape.item!, keys });
  });
  plans.push(planTable(layout.table, record, fieldIndex));
  const mainIndex = plans.length - 1;
  const topicBytes = Buffer.from(topic);
  const needsHash = plans.some((p) => p.ops.some((o) => o.standIn));
  // The main row in one walk over the record, checking and writing field by field, when its data
  // columns are fields in the record's own order, each as it is (no stand-in, no null as empty): two
  // walks (check, then write) were a third of the transcoder's time (#14). A record that fails midway
  // takes back what its row wrote (RowSink.rewind).
  const mainOps = plans[mainIndex]!.ops;
  const dataFields = mainOps.filter((o) => o.meta === undefined).map((o) => o.field);
  const oneWalk =
    walks === 1 &&
    !needsHash &&
    mainOps.every((o) => o.meta !== undefined || (o.field >= 0 && !o.standIn && !o.nullAsEmpty)) &&
    dataFields.every((f, i) => i === 0 || f > dataFields[i - 1]!);

  const cursor: Cursor = { buf: Buffer.alloc(0), pos: 0, end: 0 };
  /** Per field of the record, where its value starts in the source. */
  const starts = new Int32Array(fields.length);
  /** Per field, whether it is null (a union's null branch). */
  const nulls = new Uint8Array(fields.length);
  const itemFields = plans.map((p) => p.item?.fields?.length ?? 0);
  const itemStarts = itemFields.map((n) => new Int32Array(n));
  const standIns = new Map<string, Buffer>();

  /** The stand-in key value of this record, validated in the scan. */
  const standIn = (how: 'content-hash' | 'negative-content-hash', table: string, column: string): Buffer => {
    let v = standIns.get(how);
    if (v) return v;
    let hash: string | undefined;
    if (contentHash !== undefined && !nulls[contentHash]) {
      const c: Cursor = { buf: cursor.buf, pos: starts[contentHash]!, end: cursor.end };
      const shape = fields[contentHash]!.shape;
      if (shape.k === NULLABLE) readSmall(c);
      const len = readSmall(c);
      hash = c.buf.toString('utf8', c.pos, c.pos + len);
    }
    if (hash === undefined || !/^[0-9a-f]{15}/.test(hash))
      throw new RowMappingError(table, column, 'null, and the record has no _content_hash to key it by');
    const value = keyStandInValue(how, hash);
    if (how === 'content-hash') {
      const bytes = Buffer.from(value);
      v = Buffer.allocUnsafe(bytes.length + 5);
      const sink: ByteSink = { buf: v, pos: 0, ensure: () => undefined };
      writeLeb(sink, bytes.length);
      bytes.copy(v, sink.pos);
      v = v.subarray(0, sink.pos + bytes.length);
    } else {
      v = Buffer.allocUnsafe(8);
      v.writeBigInt64LE(BigInt(value));
    }
    standIns.set(how, v);
    return v;
  };

  const writeMeta = (
    meta: NonNullable<ColumnOp['meta']>,
    out: ByteSink,
    idx: number,
    partition: number,
    offset: number,
    ingestedAt: number,
  ) => {
    switch (meta) {
      case 'idx':
        out.ensure(4);
        out.buf.writeUInt32LE(idx, out.pos);
        out.pos += 4;
        return;
      case 'topic':
        out.ensure(topicBytes.length + 5);
        writeLeb(out, topicBytes.length);
        copyBytes(topicBytes, 0, topicBytes.length, out);
        return;
      case 'partition':
        out.ensure(4);
        out.buf.writeInt32LE(partition, out.pos);
        out.pos += 4;
        return;
      case 'offset':
        out.ensure(8);
        out.buf.writeUInt32LE(offset % 2 ** 32, out.pos);
        out.buf.writeUInt32LE(Math.floor(offset / 2 ** 32), out.pos + 4);
        out.pos += 8;
        return;
      case 'ingested_at':
        out.ensure(4);
        out.buf.writeUInt32LE(ingestedAt, out.pos);
        out.pos += 4;
        return;
    }
  };

  const writeRow = (
    plan: TablePlan,
    istarts: Int32Array | undefined,
    out: ByteSink,
    idx: number,
    partition: number,
    offset: number,
    ingestedAt: number,
  ) => {
    const c = cursor;
    for (const op of plan.ops) {
      if (op.meta !== undefined) {
        writeMeta(op.meta, out, idx, partition, offset, ingestedAt);
        continue;
      }
      const back = c.pos;
      c.pos = op.field >= 0 ? starts[op.field]! : istarts![op.itemField]!;
      if (op.standIn) {
        // The field is ["null", T] and the column plain T.
        const shape = op.field >= 0 ? fields[op.field]!.shape : undefined;
        const isNull = readSmall(c) === shape!.nullIndex;
        if (isNull) {
          const v = standIn(op.standIn, plan.table.name, op.name);
          out.ensure(v.length);
          copyBytes(v, 0, v.length, out);
        } else copy(c, op.shape!, out);
      } else if (op.nullAsEmpty) {
        const isNull = readSmall(c) === op.shape!.nullIndex;
        if (isNull) {
          out.ensure(1);
          out.buf[out.pos++] = 0;
        } else copy(c, op.shape!.inner!, out);
      } else copy(c, op.shape!, out);
      c.pos = back;
    }
  };

  /**
   * The main row in two walks: check the whole record and note where each field starts, then write.
   * Nothing is written before the record is checked, so a record that fails leaves no partial row.
   */
  const transcodeMainRow = (
    partition: number,
    offset: number,
    ingestedAt: number,
    outs: readonly RowBinaryOut[],
  ) => {
    const c = cursor;
    for (let f = 0; f < fields.length; f++) {
      starts[f] = c.pos;
      const shape = fields[f]!.shape;
      if (shape.k === NULLABLE) {
        const at = c.pos;
        const i = readSmall(c);
        c.pos = at;
        nulls[f] = i === shape.nullIndex ? 1 : 0;
      } else nulls[f] = 0;
      skip(c, shape);
    }
    if (c.pos !== c.end) malformed('trailing data');
    if (needsHash) {
      for (const plan of plans) {
        for (const op of plan.ops)
          if (op.standIn && nulls[op.field]) standIn(op.standIn, plan.table.name, op.name);
      }
    }
    // Then the main row; the caller writes the children's items after it, as the row mapper appends them.
    writeRow(
      plans[mainIndex]!,
      undefined,
      outs[mainIndex]!.partition(partition),
      0,
      partition,
      offset,
      ingestedAt,
    );
    outs[mainIndex]!.rows += 1;
  };

  /** Each child table's rows, from the record's array field (checked by then). */
  const writeChildRows = (
    partition: number,
    offset: number,
    ingestedAt: number,
    outs: readonly RowBinaryOut[],
  ) => {
    const c = cursor;
    for (let t = 0; t < mainIndex; t++) {
      const plan = plans[t]!;
      const out = outs[t]!;
      const sink = out.partition(partition);
      const istarts = itemStarts[t]!;
      const itemShapes = plan.item!.fields!;
      c.pos = starts[plan.childField]!;
      let idx = 0;
      for (;;) {
        const n = readBlockCount(c);
        if (n === 0) break;
        for (let i = 0; i < n; i++) {
          for (let f = 0; f < itemShapes.length; f++) {
            istarts[f] = c.pos;
            skip(c, itemShapes[f]!.shape);
          }
          const after = c.pos;
          writeRow(plan, istarts, sink, idx++, partition, offset, ingestedAt);
          c.pos = after;
          out.rows += 1;
        }
      }
    }
  };

  return {
    tables: plans.map((p) => ({ table: p.table.name, columns: p.ops.map((o) => o.name) })),
    oneWalk,
    transcode(src, start, partition, offset, ingestedAt, outs) {
      const c = cursor;
      c.buf = src;
      c.pos = start;
      c.end = src.length;
      standIns.clear();
      if (oneWalk) {
        const sink = outs[mainIndex]!.partition(partition);
        sink.mark();
        try {
          let f = 0;
          for (const op of mainOps) {
            if (op.meta !== undefined) {
              writeMeta(op.meta, sink, 0, partition, offset, ingestedAt);
              continue;
            }
            for (; f < op.field; f++) {
              starts[f] = c.pos;
              skip(c, fields[f]!.shape);
            }
            starts[f] = c.pos;
            checkedCopy(c, op.shape!, sink);
            f += 1;
          }
          for (; f < fields.length; f++) {
            starts[f] = c.pos;
            skip(c, fields[f]!.shape);
          }
          if (c.pos !== c.end) malformed('trailing data');
        } catch (err) {
          sink.rewind();
          throw err;
        }
        outs[mainIndex]!.rows += 1;
      } else {
        transcodeMainRow(partition, offset, ingestedAt, outs);
      }
      writeChildRows(partition, offset, ingestedAt, outs);
    },
  };
}

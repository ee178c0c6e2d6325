import avro from 'avsc';

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * avsc's own long refuses ±(2^53 - 1), the extremes of JavaScript's exact integers that Instabase's
 * int64 fields can carry. This long accepts the whole int64 range: a number while it is exact, a
 * bigint beyond that, so nothing is rounded on the way through Kafka.
 */
export const Int64Type = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer): number | bigint => {
    const n = buf.readBigInt64LE();
    return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
  },
  toBuffer: (n: number | bigint): Buffer => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (json: unknown): number | bigint => (typeof json === 'string' ? BigInt(json) : (json as number)),
  toJSON: (n: number | bigint): number | string => (typeof n === 'bigint' ? n.toString() : n),
  isValid: (n: unknown): boolean =>
    (typeof n === 'number' && Number.isSafeInteger(n)) ||
    (typeof n === 'bigint' && n >= MIN_INT64 && n <= MAX_INT64),
  compare: (a: number | bigint, b: number | bigint): number => (a < b ? -1 : a > b ? 1 : 0),
});

/** Options for every avsc type this project builds, the registry client's included. */
export const avroOptions = { registry: { long: Int64Type } } as unknown as Partial<avro.ForSchemaOptions>;

export function avroType(schema: avro.Schema): avro.Type {
  return avro.Type.forSchema(schema, avroOptions);
}

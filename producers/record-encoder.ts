import type { Message } from 'kafkajs';
import type avro from 'avsc';
import { parseAvroSchema } from '../schemas/index.ts';
import { mapToAvro, MappingError } from './avro-mapper.ts';
import { contentHash } from './content-hash.ts';
import type { Emit } from './engine/types.ts';
import { stringifyJson } from './instabase/json.ts';

export interface RegisteredResource {
  valueId: number;
  keyId: number;
  type: avro.Type;
  keyType: avro.Type;
}

/** Confluent wire format: magic byte 0, the schema id as a big-endian int32, then Avro binary. */
export function wireEncode(schemaId: number, type: avro.Type, value: unknown): Buffer {
  const body = type.toBuffer(value);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeInt32BE(schemaId, 1);
  body.copy(out, 5);
  return out;
}

export const stringKeyType = (): avro.Type => parseAvroSchema('string');

/**
 * Emit → Kafka message: the envelope is added, the record mapped onto the resource's Avro schema,
 * checked, and key and value encoded against the ids under which these very schemas were registered.
 * Throws MappingError when the record does not fit.
 */
export class RecordEncoder {
  constructor(
    private readonly resources: ReadonlyMap<string, RegisteredResource>,
    private readonly ibContext: string | undefined,
  ) {}

  encode(emit: Emit, fetchedAt: number): Message {
    const registered = this.resources.get(emit.resource);
    if (!registered) throw new Error(`no schema registered for ${emit.resource}`);
    const record = mapToAvro(registered.type, {
      ...emit.fields,
      _source_endpoint: emit.endpoint,
      _ib_context: this.ibContext ?? null,
      _fetched_at: fetchedAt,
      _content_hash: contentHash(emit.object),
      _deleted: emit.deleted,
      _raw_json: stringifyJson(emit.object),
    });
    const problems: string[] = [];
    if (!registered.type.isValid(record, { errorHook: (path) => problems.push(path.join('.')) })) {
      throw new MappingError(problems.map((p) => `${p}: not valid for the schema`));
    }
    return {
      key: wireEncode(registered.keyId, registered.keyType, emit.key),
      value: wireEncode(registered.valueId, registered.type, record),
      timestamp: String(fetchedAt),
    };
  }
}

import type { Message } from 'kafkajs';
import type avro from 'avsc';
import { Counter } from 'prom-client';
import { metricsRegistry } from '../core/metrics.ts';
import { NULLED_FIELDS, parseAvroSchema } from '../schemas/index.ts';
import { isWellFormed, mapToAvro, MappingError } from './avro-mapper.ts';
import { contentHash } from './content-hash.ts';
import type { Emit } from './follow/types.ts';
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

/**
 * Values published as null because Avro cannot carry them faithfully (a timestamp its logical type
 * cannot represent, a string with a lone surrogate; see avro-mapper.ts), per resource and field path with array positions dropped (`fields[].at`). Counted
 * when the record is encoded, so a transaction that aborts and is retried counts its records again.
 */
export const valuesNulled = new Counter({
  name: 'instabase_values_nulled_total',
  help: 'Values published as null because Avro cannot carry them faithfully (out-of-range timestamp, lone surrogate); the value stays in _raw_json',
  labelNames: ['resource', 'field'] as const,
  registers: [metricsRegistry],
});

export const stringKeyType = (): avro.Type => parseAvroSchema('string');

/**
 * Emit → Kafka message: the envelope is added, the record mapped onto the resource's Avro schema,
 * checked, and key and value encoded against the ids under which these very schemas were registered.
 * Throws MappingError when the record does not fit. A value Avro cannot carry faithfully is published
 * as null and named in `_nulled_fields` (see avro-mapper.ts), and valuesNulled rises.
 */
export class RecordEncoder {
  constructor(
    private readonly resources: ReadonlyMap<string, RegisteredResource>,
    private readonly ibContext: string | undefined,
  ) {}

  encode(emit: Emit, fetchedAt: number): Message {
    const registered = this.resources.get(emit.resource);
    if (!registered) throw new Error(`no schema registered for ${emit.resource}`);
    // A key cannot be nulled: one UTF-8 cannot encode is dead-lettered (see avro-mapper.ts).
    if (!isWellFormed(emit.key))
      throw new MappingError([
        `key: ${JSON.stringify(emit.key)} has a lone surrogate, which UTF-8 cannot encode`,
      ]);
    const { record, nulled } = mapToAvro(registered.type, {
      ...emit.fields,
      _source_endpoint: emit.endpoint,
      _ib_context: this.ibContext ?? null,
      _fetched_at: fetchedAt,
      _content_hash: contentHash(emit.object),
      _deleted: emit.deleted,
      _raw_json: stringifyJson(emit.object),
      [NULLED_FIELDS]: [],
    });
    if (nulled.length) {
      // Without the note a reader could not tell a nulled value from an absent one: dead-letter instead.
      if (!(NULLED_FIELDS in record))
        throw new MappingError(
          nulled.map((p) => `${p}: not representable, and the schema has no ${NULLED_FIELDS}`),
        );
      record[NULLED_FIELDS] = nulled;
    }
    const problems: string[] = [];
    if (!registered.type.isValid(record, { errorHook: (path) => problems.push(path.join('.')) })) {
      throw new MappingError(problems.map((p) => `${p}: not valid for the schema`));
    }
    const message = {
      key: wireEncode(registered.keyId, registered.keyType, emit.key),
      value: wireEncode(registered.valueId, registered.type, record),
      timestamp: String(fetchedAt),
    };
    for (const path of nulled)
      valuesNulled.inc({ resource: emit.resource, field: path.replace(/\[\d+\]/g, '[]') });
    return message;
  }
}

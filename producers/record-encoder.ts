import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Message } from 'kafkajs';
import type avro from 'avsc';
import { mapToAvro } from './avro-mapper.ts';
import { contentHash } from './content-hash.ts';
import { stringifyJson } from './instabase/json.ts';
import type { Emit } from './engine/types.ts';

export interface RegisteredResource {
  valueId: number;
  keyId: number;
  type: avro.Type;
}

/**
 * Emit → Kafka message: the envelope is added, the record mapped onto the resource's Avro schema and
 * both key and value encoded in the Confluent wire format with their registered schema ids.
 * Throws MappingError or the registry's validation error when the record does not fit.
 */
export class RecordEncoder {
  constructor(
    private readonly registry: SchemaRegistry,
    private readonly resources: ReadonlyMap<string, RegisteredResource>,
    private readonly ibContext: string | undefined,
  ) {}

  async encode(emit: Emit, fetchedAt: number): Promise<Message> {
    const registered = this.resources.get(emit.resource);
    if (!registered) throw new Error(`no schema registered for ${emit.resource}`);
    const source = {
      ...emit.fields,
      _source_endpoint: emit.endpoint,
      _ib_context: this.ibContext ?? null,
      _fetched_at: fetchedAt,
      _content_hash: contentHash(emit.object),
      _deleted: emit.deleted,
      _raw_json: stringifyJson(emit.object),
    };
    const record = mapToAvro(registered.type, source);
    const [key, value] = await Promise.all([
      this.registry.encode(registered.keyId, emit.key),
      this.registry.encode(registered.valueId, record),
    ]);
    return { key, value, timestamp: String(fetchedAt) };
  }
}

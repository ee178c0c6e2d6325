import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type avro from 'avsc';

/** Why a message cannot be decoded. Each is permanent for that message, so it is dead-lettered. */
export type DecodeFailure = 'empty-value' | 'not-wire-format' | 'unknown-schema-id' | 'avro-decode-failed';

export class DecodeError extends Error {
  constructor(
    readonly reason: DecodeFailure,
    detail: string,
    readonly schemaId?: number,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'DecodeError';
  }
}

/** A message's schema, known from its header, its value not decoded. */
export interface Peeked {
  schemaId: number;
  type: avro.Type;
}

export interface Decoded extends Peeked {
  record: Record<string, unknown>;
}

const MAGIC_BYTE = 0;

function isNotFound(err: unknown): boolean {
  const e = err as { status?: number; message?: string };
  return e?.status === 404 || /\b404\b|not found|No content with id/i.test(String(e?.message ?? ''));
}

/**
 * Decodes Confluent wire-format Avro: magic byte, 4-byte schema id, Avro binary. Writer types are
 * fetched from the registry once per id and decoding itself is synchronous, which keeps the hot loop
 * free of promises. A registry that is down is not a bad message: that error propagates, the batch is
 * retried, and nothing is dead-lettered for it.
 */
export class WireDecoder {
  private readonly types = new Map<number, avro.Type>();
  private readonly peeked = new Map<number, Peeked>();
  private readonly unknownIds = new Set<number>();

  constructor(private readonly registry: SchemaRegistry) {}

  /**
   * Header check and schema lookup; resolves the writer type so that decode() can stay synchronous.
   * Returns undefined when there is nothing to fetch (every message but the first of each schema id),
   * so that the per-message loop does not make and await a promise for nothing.
   */
  prepare(value: Buffer | null): Promise<void> | undefined {
    if (!value || value.length < 5 || value[0] !== MAGIC_BYTE) return undefined;
    const id = value.readInt32BE(1);
    if (this.types.has(id) || this.unknownIds.has(id)) return undefined;
    return this.fetchType(id);
  }

  /** Whether decode() or peek() can answer at once: a header that names a schema already fetched. */
  ready(value: Buffer | null): boolean {
    return (
      value !== null && value.length >= 5 && value[0] === MAGIC_BYTE && this.types.has(value.readInt32BE(1))
    );
  }

  private async fetchType(id: number): Promise<void> {
    try {
      this.types.set(id, (await this.registry.getSchema(id)) as unknown as avro.Type);
    } catch (err) {
      if (isNotFound(err)) this.unknownIds.add(id);
      else throw err;
    }
  }

  /**
   * The header checks and schema lookup of decode(), without decoding the Avro: for a target that
   * transcodes the bytes itself (schema/rowbinary.ts), which then checks them as avsc would.
   */
  peek(value: Buffer | null): Peeked {
    if (!value || value.length === 0) throw new DecodeError('empty-value', 'the message has no value');
    if (value.length < 5 || value[0] !== MAGIC_BYTE) {
      throw new DecodeError('not-wire-format', `first byte is ${value[0]}, length ${value.length}`);
    }
    const schemaId = value.readInt32BE(1);
    let peeked = this.peeked.get(schemaId);
    if (!peeked) {
      const type = this.types.get(schemaId);
      if (!type)
        throw new DecodeError('unknown-schema-id', `the registry has no schema ${schemaId}`, schemaId);
      // One answer per schema id, not an object per message (#14).
      peeked = Object.freeze({ schemaId, type });
      this.peeked.set(schemaId, peeked);
    }
    return peeked;
  }

  decode(value: Buffer | null): Decoded {
    const { schemaId, type } = this.peek(value);
    try {
      return { schemaId, type, record: type.fromBuffer(value!.subarray(5)) as Record<string, unknown> };
    } catch (err) {
      throw new DecodeError('avro-decode-failed', (err as Error).message, schemaId);
    }
  }
}

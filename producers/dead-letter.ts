import type { Message } from 'kafkajs';
import { redact } from '../core/secrets.ts';

/** Why a producer dead-lettered something: a record the API sent that we could not publish as is. */
export type ProducerFailure =
  'invalid-record' | 'unmappable-record' | 'malformed-response' | 'record-too-large';

export interface DeadLetter {
  resource: string;
  reason: ProducerFailure;
  error: string;
  /** Method and path template, e.g. "GET /v2/batches". */
  endpoint: string;
  requestPath?: string | undefined;
  /** The payload as received (JSON text, or a bounded body excerpt for a malformed response). */
  raw?: string | undefined;
  key?: string | undefined;
  ibContext?: string | undefined;
  details?: unknown;
}

/**
 * A dead letter is JSON, not Avro, on purpose: it holds what did not fit the schema. The reason also
 * travels in headers so that tools can filter without parsing the value.
 */
export function deadLetterMessage(letter: DeadLetter, now = Date.now()): Message {
  const value = {
    resource: letter.resource,
    reason: letter.reason,
    error: redact(letter.error),
    endpoint: letter.endpoint,
    request_path: letter.requestPath === undefined ? null : redact(letter.requestPath),
    ib_context: letter.ibContext ?? null,
    failed_at: now,
    raw: letter.raw === undefined ? null : redact(letter.raw),
    details: letter.details ?? null,
  };
  return {
    key: letter.key ?? null,
    value: JSON.stringify(value),
    headers: { 'x-error-reason': letter.reason, 'x-resource': letter.resource },
  };
}

/**
 * `raw` cut to its first `chars` characters when longer, saying how long it was: a dead letter must fit
 * its topic (kafka.maxMessageBytes), or it would fail its transaction as the record did.
 */
export function excerpt(raw: string, chars: number): string {
  if (raw.length <= chars) return raw;
  return `${raw.slice(0, chars)}… (cut: ${Buffer.byteLength(raw)} bytes in all)`;
}

/**
 * Fitting a sink's dead letters to what their topic takes. The broker checks `max.message.bytes`
 * against a whole record batch, and kafkajs sends one batch per partition per request, so a buffer's
 * dead letters (a dead-letter topic has one partition) go out in as many requests as it takes; and a
 * dead letter larger than the topic takes on its own keeps only a prefix of its value, since one the
 * broker refuses at every retry would stall its partition for good.
 */
import type { Message } from 'kafkajs';

/**
 * What a request may carry, of a topic's `max.message.bytes`: the batch's own header (61 bytes) and
 * each record's framing (varints, attributes: under 40 bytes) are not in `messageBytes`.
 */
export function requestBudget(topicMaxMessageBytes: number): number {
  return Math.floor(topicMaxMessageBytes * 0.9);
}

const RECORD_FRAMING = 40;

function size(data: Message['key'] | Message['value'] | undefined): number {
  if (data === null || data === undefined) return 0;
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/** A record's bytes in a batch, near enough: key, value, header names and values, framing. */
export function messageBytes(message: Message): number {
  let bytes = RECORD_FRAMING + size(message.key) + size(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += Buffer.byteLength(name) + RECORD_FRAMING;
    if (Buffer.isBuffer(value) || typeof value === 'string') bytes += size(value);
  }
  return bytes;
}

/**
 * The message as it fits in one request of `budget`: unchanged when it does; otherwise its value cut
 * to what is left, with `x-value-bytes` saying how long it was (the whole message stays in the source
 * topic, at the coordinates the other headers give), and its key too, with `x-key-bytes`, when the key
 * alone is over what is left.
 */
export function fitDeadLetter(message: Message, budget: number): Message {
  if (messageBytes(message) <= budget) return message;
  const value = bytesOf(message.value);
  let key = message.key;
  let headers: NonNullable<Message['headers']> = {
    ...message.headers,
    'x-value-bytes': String(value.length),
  };
  const overKey = messageBytes({ key, value: null, headers }) - budget;
  if (overKey > 0) {
    const whole = bytesOf(key);
    headers = { ...headers, 'x-key-bytes': String(whole.length) };
    // The new header's own bytes come out of the key too.
    const left = whole.length - (messageBytes({ key, value: null, headers }) - budget);
    key = whole.subarray(0, Math.max(0, left));
  }
  const rest = messageBytes({ key, value: null, headers });
  return { ...message, key, value: value.subarray(0, Math.max(0, budget - rest)), headers };
}

function bytesOf(data: Message['key'] | Message['value'] | undefined): Buffer {
  if (data === null || data === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** The messages, in order, as consecutive requests of at most `budget` bytes (each at least one message). */
export function deadLetterRequests(messages: readonly Message[], budget: number): Message[][] {
  const requests: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const n = messageBytes(message);
    if (current.length > 0 && bytes + n > budget) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += n;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

// Filling the benchmark topic. It runs in a child process (fillInChild) so that the garbage of
// producing a million records does not sit in the RSS of the process that then runs the sink.
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Partitioners, type Message, type PartitionMetadata } from 'kafkajs';
import { Progress } from '../../cli/progress.ts';
import type { Config } from '../../core/config.ts';
import { createKafka } from '../../core/kafka.ts';
import type { Logger } from '../../core/log.ts';
import { keySubject, resourceTopic, valueSubject } from '../../core/topics.ts';
import { registerSubject } from '../../producers/registration.ts';
import { wireEncode } from '../../producers/record-encoder.ts';
import { avroType, keySchema, parseAvroSchema, valueSchema } from '../../schemas/index.ts';
import { RESOURCE, type BenchSettings } from './config.ts';
import { batchKey, batchRecord } from './records.ts';

/**
 * Messages per sendBatch call (a partition's share must stay under the broker's 1 MB
 * message.max.bytes), and how many such calls are in flight at once.
 */
const FILL_CHUNK = 3_000;
const FILL_IN_FLIGHT = 3;

export interface FillSummary {
  seconds: number;
  recordsPerSecond: number;
  valueBytesAvg: number;
  rawJsonBytesAvg: number;
}

/** Where each record landed: record i is at (partitionOf[i], offsetOf[i]). */
export interface Placement {
  partitionOf: Uint16Array;
  offsetOf: Float64Array;
}

/** What the fill hands back: the placement stays in a file until (b) needs it. */
export interface Filled {
  summary: FillSummary;
  valueId: number;
  placementFile: string;
}

/** Little-endian, as the typed arrays are on the platforms Node runs on: the partitions, then the offsets. */
export function writePlacement(file: string, { partitionOf, offsetOf }: Placement): void {
  writeFileSync(file, Buffer.concat([new Uint8Array(offsetOf.buffer), new Uint8Array(partitionOf.buffer)]));
}

export function readPlacement(file: string): Placement {
  const bytes = readFileSync(file);
  const total = bytes.length / 10;
  // Copied into fresh, aligned buffers.
  const offsetOf = new Float64Array(total);
  new Uint8Array(offsetOf.buffer).set(bytes.subarray(0, total * 8));
  const partitionOf = new Uint16Array(total);
  new Uint8Array(partitionOf.buffer).set(bytes.subarray(total * 8));
  return { partitionOf, offsetOf };
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Registers the real schemas under the topic's subjects and produces `total` records, key and value
 * in the Confluent wire format (wireEncode, the producers' encoder), partitioned by key with kafkajs's
 * default partitioner as the producers do, acks -1.
 */
export async function fillTopic(
  config: Config,
  logger: Logger,
  total: number,
): Promise<{ summary: FillSummary; valueId: number; placement: Placement }> {
  const topic = resourceTopic(config, RESOURCE);
  const valueId = await registerSubject(config, valueSubject(topic), valueSchema(RESOURCE));
  const keyId = await registerSubject(config, keySubject(topic), keySchema());
  const type = avroType(RESOURCE);
  const keyType = parseAvroSchema(keySchema());
  const kafka = createKafka(config, logger, 'bench-fill');
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  try {
    const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions;
    const partitionMetadata: PartitionMetadata[] = partitions.map((p) => ({ ...p }));
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionOf = new Uint16Array(total);
    const offsetOf = new Float64Array(total);
    await producer.connect();
    const progress = new Progress(`fill ${topic}`, total);
    const started = performance.now();
    let valueBytes = 0;
    let rawBytes = 0;
    let done = 0;
    const pending: Array<Promise<void>> = [];
    try {
      for (let from = 0; from < total; from += FILL_CHUNK) {
        const to = Math.min(total, from + FILL_CHUNK);
        const messages: Message[] = [];
        for (let i = from; i < to; i++) {
          const record = batchRecord(i);
          const message: Message = {
            key: wireEncode(keyId, keyType, batchKey(i)),
            value: wireEncode(valueId, type, record),
          };
          message.partition = partitioner({ topic, partitionMetadata, message });
          partitionOf[i] = message.partition;
          valueBytes += (message.value as Buffer).length;
          rawBytes += (record._raw_json as string).length;
          messages.push(message);
        }
        const sent = producer
          .sendBatch({ topicMessages: [{ topic, messages }], acks: -1 })
          .then((metadata) => {
            // Within one request, a partition's messages take consecutive offsets from its baseOffset.
            const next = new Map(metadata.map((m) => [m.partition, Number(m.baseOffset)]));
            for (let i = from; i < to; i++) {
              const p = partitionOf[i] as number;
              const offset = next.get(p);
              if (offset === undefined) throw new Error(`no produce result for partition ${p}`);
              offsetOf[i] = offset;
              next.set(p, offset + 1);
            }
            done += to - from;
            progress.update(done, done);
          });
        // Handled here so that a failure of one call is not also an unhandled rejection of the others.
        sent.catch(() => undefined);
        pending.push(sent);
        if (pending.length >= FILL_IN_FLIGHT) await pending.shift();
      }
      await Promise.all(pending);
    } catch (err) {
      await Promise.allSettled(pending);
      throw err;
    } finally {
      progress.done();
    }
    const elapsed = (performance.now() - started) / 1000;
    const high = await admin.fetchTopicOffsets(topic);
    const inTopic = high.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    if (inTopic !== total)
      throw new Error(`the topic holds ${inTopic} messages after the fill, expected ${total}`);
    return {
      summary: {
        seconds: round(elapsed, 2),
        recordsPerSecond: Math.round(total / elapsed),
        valueBytesAvg: Math.round(valueBytes / total),
        rawJsonBytesAvg: Math.round(rawBytes / total),
      },
      placement: { partitionOf, offsetOf },
      valueId,
    };
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

export type ChildReply = { ok: true; summary: FillSummary; valueId: number } | { ok: false; error: string };

/**
 * Runs fillTopic in a child process (./fill-child.ts), which writes the placement of the records to
 * `placementFile` (readPlacement) and reports the rest.
 */
export function fillInChild(
  prefix: string,
  settings: BenchSettings,
  total: number,
  placementFile: string,
): Promise<Filled> {
  const child = fork(
    fileURLToPath(new URL('./fill-child.ts', import.meta.url)),
    [prefix, String(settings.partitions), String(settings.flushRows), String(total), placementFile],
    // The loader (tsx) comes along; a profiler flag given to the bench does not.
    { execArgv: process.execArgv.filter((a) => !/^--(cpu-prof|prof|heap-prof)/.test(a)) },
  );
  // An interrupted bench exits without waiting for the fill: the child goes with it.
  const killChild = () => child.kill();
  process.once('exit', killChild);
  return new Promise((resolve, reject) => {
    let reply: ChildReply | undefined;
    child.on('message', (m) => (reply = m as ChildReply));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('exit', killChild);
      if (reply?.ok) resolve({ summary: reply.summary, valueId: reply.valueId, placementFile });
      else reject(new Error(`the fill failed: ${reply?.error ?? `child exited with ${signal ?? code}`}`));
    });
  });
}

// Encoding alone, in one process, without Kafka or ClickHouse: the batches records of the sink bench
// through (1) the JSON path (avsc decode, row mapper, JSON.stringify into lines) and (2) the RowBinary
// transcoder, several rounds each, alternating. CPU µs per record and output bytes per row; the two
// paths' ratio holds on a busy machine where the sink bench's wall-clock figures do not.
//   node --import tsx test/bench/encode-micro.ts [records]
import { BatchBuffer } from '../../sinks/batch-buffer.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import { createRowMapper } from '../../sinks/schema/rows.ts';
import { createTranscoder } from '../../sinks/schema/rowbinary.ts';
import { avroType, valueSchema } from '../../schemas/index.ts';
import { batchRecord } from './records.ts';

const n = Number(process.argv[2] ?? 100_000);
const type = avroType('batches');
const layout = deriveLayout('batches', type, { database: 'db' });
const values = Array.from({ length: n }, (_, i) => {
  const body = type.toBuffer(batchRecord(i));
  const v = Buffer.allocUnsafe(body.length + 5);
  v[0] = 0;
  v.writeInt32BE(1, 1);
  body.copy(v, 5);
  return v;
});
const mapper = createRowMapper(layout);
const transcoder = createTranscoder(layout, valueSchema('batches'), 'bench.batches');
const tables = mapper.tables;

function json(): number {
  const buffer = new BatchBuffer(Date.now());
  for (let i = 0; i < n; i++) {
    const record = type.fromBuffer(values[i]!.subarray(5)) as Record<string, unknown>;
    mapper.map(
      record,
      { topic: 'bench.batches', partition: i % 3, offset: i },
      buffer.ingestedAt,
      buffer.out(1, tables),
    );
    buffer.encode(i % 3);
  }
  return [...buffer.encoded.values()].reduce((s, e) => s + e.body().reduce((t, b) => t + b.length, 0), 0);
}

function binary(): number {
  const buffer = new BatchBuffer(Date.now());
  for (let i = 0; i < n; i++) {
    transcoder.transcode(values[i]!, 5, i % 3, i, buffer.ingestedAt, buffer.binary(1, transcoder.tables));
  }
  return [...buffer.encoded.values()].reduce((s, e) => s + e.body().reduce((t, b) => t + b.length, 0), 0);
}

const results: Record<string, number[]> = { JSONEachRow: [], RowBinary: [] };
let bytes: Record<string, number> = {};
for (let round = 0; round < 5; round++) {
  for (const [name, f] of [
    ['JSONEachRow', json],
    ['RowBinary', binary],
  ] as const) {
    const cpu = process.cpuUsage();
    const b = f();
    const used = process.cpuUsage(cpu);
    results[name]!.push((used.user + used.system) / n);
    bytes = { ...bytes, [name]: b / n };
  }
}
for (const [name, us] of Object.entries(results)) {
  const sorted = [...us].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(12)} CPU µs/record min ${sorted[0]!.toFixed(2)} median ${sorted[2]!.toFixed(2)}  bytes/row ${bytes[name]!.toFixed(0)}`,
  );
}

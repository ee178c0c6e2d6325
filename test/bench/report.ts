import type { SinkBenchResult } from './sink.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number) => n.toFixed(digits);

/** The human-readable summary of a sink benchmark: one line per measurement, then the ratios and memory. */
export function sinkTable(r: SinkBenchResult): string {
  const rows: Array<[string, string, string, string]> = [
    ['measurement', 'rows/s', 'seconds', 'notes'],
    [
      '(a) sink → ClickHouse',
      int(r.sink.rowsPerSecond),
      fixed(r.sink.seconds, 2),
      `startSinks() to caught up, incl. ${fixed(r.sink.startupSeconds, 2)} s start-up; ${r.sink.flushes} flushes of ~${int(r.sink.rowsPerFlush)} rows`,
    ],
    [
      '(b) raw insert ceiling',
      int(r.ceiling.rowsPerSecond),
      fixed(r.ceiling.seconds, 2),
      `JSONEachRow, ${r.ceiling.inserts} inserts of ~${int(r.ceiling.rowsPerInsert)} rows, insert time only; ` +
        `the faster of: ${Object.entries(r.ceiling.methods)
          .map(([m, v]) => `${m} ${int(v.rowsPerSecond)}/s`)
          .join(', ')}`,
    ],
    [
      '(d) server ingest',
      int(r.serverIngest.rowsPerSecond),
      fixed(r.serverIngest.formats[r.serverIngest.format].seconds, 2),
      `ClickHouse parsing prepared bytes, ${r.serverIngest.inserts} inserts per format, insert time only; fastest ` +
        `${r.serverIngest.format}; ${Object.entries(r.serverIngest.formats)
          .map(([f, v]) => `${f} ${int(v.rowsPerSecond)}/s (${v.bytesPerRow} B/row)`)
          .join(', ')}; each after the server's merges had finished (waited ${Object.values(
          r.serverIngest.formats,
        )
          .map((v) => `${fixed(v.quietWaitSeconds, 1)} s`)
          .join(', ')})`,
    ],
    [
      '(c) raw kafkajs read',
      int(r.kafkaRead.messagesPerSecond),
      fixed(r.kafkaRead.seconds, 2),
      `eachBatch, no decoding, incl. ${fixed(r.kafkaRead.startupSeconds, 2)} s start-up`,
    ],
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: [string, string, string, string]) =>
    `  ${row[0].padEnd(widths[0]!)}  ${row[1].padStart(widths[1]!)}  ${row[2].padStart(widths[2]!)}  ${row[3]}`;
  const aToB = r.ratios.sinkToCeiling;
  return [
    `sink benchmark: ${int(r.records)} batches records (avg value ${r.fill.valueBytesAvg} B, _raw_json ${r.fill.rawJsonBytesAvg} B), ` +
      `${r.partitions} partitions, flushRows ${int(r.flushRows)}, ClickHouse ${r.clickhouse}`,
    `  fill: ${int(r.fill.recordsPerSecond)} records/s (${fixed(r.fill.seconds, 1)} s)`,
    '',
    line(rows[0]!),
    ...rows.slice(1).map(line),
    '',
    `  a/b = ${fixed(aToB, 3)}  (target ≥ 0.5: ${aToB >= 0.5 ? 'met' : 'not met'}; against each insert method: ` +
      `${Object.entries(r.ratios.sinkToCeilingByMethod)
        .map(([m, v]) => `${m} ${fixed(v, 3)}`)
        .join(', ')})`,
    `  a/d = ${fixed(r.ratios.sinkToServer, 3)}  (the server's fastest format; target ≥ 0.5: ${r.ratios.sinkToServer >= 0.5 ? 'met' : 'not met'}; per format: ` +
      `${Object.entries(r.ratios.sinkToServerByFormat)
        .map(([f, v]) => `${f} ${fixed(v, 3)}`)
        .join(', ')})`,
    `  a/c = ${fixed(r.ratios.sinkToKafkaRead, 3)}`,
    `  peak RSS during (a): ${fixed(r.sink.peakRssMb, 1)} MB (target < 300 MB: ${r.sink.peakRssMb < 300 ? 'met' : 'not met'}); ` +
      `RSS of this process, which runs the sink in-process, sampled every 100 ms during (a) only ` +
      `(${fixed(r.sink.rssAtStartMb, 1)} MB when (a) started; peak heap used ${fixed(r.sink.peakHeapUsedMb, 1)} MB)`,
    `  during (a): ${fixed(r.sink.cpuMicrosPerRow, 2)} µs CPU per row; steal ${r.sink.host.stealPercent ?? '?'} % of the machine's CPU time; ` +
      `GC ${r.sink.host.gc.minorCount} scavenges (${int(r.sink.host.gc.minorMs)} ms), ` +
      `${r.sink.host.gc.majorCount} old-generation (${int(r.sink.host.gc.majorMs)} ms)`,
    `  verified: ${int(r.verified.sinkRows)} rows in the sink's table, ` +
      `${Object.values(r.verified.ceilingRows).map(int).join(' and ')} in the ceiling's; ` +
      `same content (all columns but _ingested_at): ${r.verified.identicalContent ? 'yes' : 'NO'}`,
    `  (b) methods: array = the client's insert({ values: rows, format: 'JSONEachRow' }); ` +
      `streamed = JSONEachRow lines written into the request body as they are serialized (exec)`,
  ].join('\n');
}

// (d) of the sink bench: ClickHouse's own ingest of the very rows the sink wrote, from bytes prepared
// before the clock starts, so no Node serialization is in the timed part. The bytes are ClickHouse's
// own output of the sink's table in each format, cut into batches of flushRows lines, so both sides
// hold exactly the same rows.
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Progress } from '../../cli/progress.ts';
import { qualifiedName, quoteIdentifier, quoteString } from '../../sinks/schema/sql.ts';

/**
 * JSONEachRow is what the sink sends; TabSeparated was the cheapest format the server parses on these
 * machines (about as fast as RowBinary, and cut into batches by lines like JSONEachRow).
 */
export const SERVER_FORMATS = ['JSONEachRow', 'TabSeparated'] as const;
export type ServerFormat = (typeof SERVER_FORMATS)[number];

export interface ServerIngestResult {
  /** The fastest format's. */
  rowsPerSecond: number;
  format: ServerFormat;
  formats: Record<
    ServerFormat,
    {
      rowsPerSecond: number;
      seconds: number;
      table: string;
      bytesPerRow: number;
      /** How long the server's merges (of (a), (b) and the format before) took to finish first. */
      quietWaitSeconds: number;
    }
  >;
  inserts: number;
}

/** How long to wait for the server's merges to finish before the clock starts. */
const QUIET_TIMEOUT_MS = 120_000;

/**
 * Waits until the server runs no merges (or QUIET_TIMEOUT_MS has passed), and says how long that took,
 * so that (d) is measured as (a) is: on a server running only the merges of its own inserts ((a) starts
 * after a fill that writes only to Kafka). (a) and (b) leave 40 parts per table, and each format here
 * as many. In the first 4 runs with the wait (2026-12-03) there was nothing to wait for (0.01 s at
 * most), so (d)'s spread between runs (163k-210k rows/s in those 4) does not come from merges.
 */
async function waitForQuiet(ch: ClickHouseClient): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < QUIET_TIMEOUT_MS) {
    const rs = await ch.query({ query: 'SELECT count() AS n FROM system.merges', format: 'JSONEachRow' });
    if (Number((await rs.json<{ n: string }>())[0]?.n ?? 0) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return Math.round(performance.now() - started) / 1000;
}

/** Columns an INSERT may name: everything but ALIAS and MATERIALIZED ones. */
async function insertableColumns(ch: ClickHouseClient, database: string, table: string): Promise<string[]> {
  const rs = await ch.query({
    query:
      `SELECT name FROM system.columns WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} ` +
      `AND default_kind NOT IN ('ALIAS', 'MATERIALIZED')`,
    format: 'JSONEachRow',
  });
  return (await rs.json<{ name: string }>()).map((c) => c.name);
}

/** Streams `SELECT … FORMAT f` into files of `batchRows` lines each; returns the files and the total bytes. */
async function exportBatches(
  ch: ClickHouseClient,
  query: string,
  batchRows: number,
  dir: string,
  format: string,
): Promise<{ files: string[]; bytes: number }> {
  const result = await ch.exec({ query });
  const files: string[] = [];
  let bytes = 0;
  let lines = 0;
  let out: ReturnType<typeof createWriteStream> | undefined;
  const open = () => {
    const file = join(dir, `${format}-${String(files.length).padStart(5, '0')}`);
    files.push(file);
    out = createWriteStream(file);
  };
  for await (const chunk of result.stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
      if (!out) open();
      lines += 1;
      if (lines % batchRows === 0) {
        out!.write(chunk.subarray(start, i + 1));
        out!.end();
        await finished(out!);
        out = undefined;
        start = i + 1;
      }
    }
    if (start < chunk.length) {
      if (!out) open();
      out!.write(chunk.subarray(start));
    }
  }
  if (out) {
    out.end();
    await finished(out);
  }
  return { files, bytes };
}

export async function measureServerIngest(
  ch: ClickHouseClient,
  database: string,
  source: string,
  batchRows: number,
  scratch: string,
): Promise<ServerIngestResult> {
  const columns = await insertableColumns(ch, database, source);
  const list = columns.map(quoteIdentifier).join(', ');
  const formats = {} as ServerIngestResult['formats'];
  let inserts = 0;
  for (const format of SERVER_FORMATS) {
    const table = `${source}_server_${format.toLowerCase()}`;
    await ch.command({
      query: `CREATE TABLE ${qualifiedName(database, table)} AS ${qualifiedName(database, source)}`,
    });
    const { files, bytes } = await exportBatches(
      ch,
      `SELECT ${list} FROM ${qualifiedName(database, source)} FORMAT ${format}`,
      batchRows,
      scratch,
      format,
    );
    const quietWaitSeconds = await waitForQuiet(ch);
    const progress = new Progress(`(d) server ingest ${format}`, files.length);
    let ms = 0;
    let done = 0;
    for (const file of files) {
      const body = readFileSync(file);
      const started = performance.now();
      const result = await ch.exec({
        query: `INSERT INTO ${qualifiedName(database, table)} (${list}) FORMAT ${format}`,
        values: Readable.from([body]),
      });
      await finished(result.stream.resume());
      ms += performance.now() - started;
      done += 1;
      progress.update(done, done * batchRows);
    }
    progress.done();
    const rs = await ch.query({
      query: `SELECT count() AS n FROM ${qualifiedName(database, table)}`,
      format: 'JSONEachRow',
    });
    const rows = Number((await rs.json<{ n: string }>())[0]?.n ?? 0);
    formats[format] = {
      table,
      seconds: Math.round(ms) / 1000,
      rowsPerSecond: Math.round(rows / (ms / 1000)),
      bytesPerRow: Math.round(bytes / Math.max(1, rows)),
      quietWaitSeconds,
    };
    inserts = files.length;
  }
  const best = SERVER_FORMATS.reduce((a, b) => (formats[b].rowsPerSecond > formats[a].rowsPerSecond ? b : a));
  return { rowsPerSecond: formats[best].rowsPerSecond, format: best, formats, inserts };
}

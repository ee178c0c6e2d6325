// The chDB HTTP front (server.py) speaks ClickHouse's HTTP interface the way @clickhouse/client and the
// sinks rely on it: status codes and error text, settings and database per request only, INSERT data
// in the body (plain, chunked, gzip), FORMAT clauses and the X-ClickHouse-* headers.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { chdbUnavailable, startChdbClickHouse, type ChdbClickHouse } from './harness.ts';

const unavailable = chdbUnavailable();

describe('the chDB HTTP front', { skip: unavailable ? `skipped: ${unavailable}` : false }, () => {
  let server: ChdbClickHouse;
  let ch: ClickHouseClient;

  before(async () => {
    server = await startChdbClickHouse();
    ch = createClient({
      url: server.url,
      compression: { request: false, response: false },
      log: { level: ClickHouseLogLevel.OFF },
    });
    await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS front' });
    await ch.command({ query: 'CREATE TABLE front.t (a UInt32, b String) ENGINE = MergeTree ORDER BY a' });
  });
  after(async () => {
    await ch?.close();
    await server?.stop();
  });

  const post = (query: string | undefined, body?: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/${query === undefined ? '' : `?query=${encodeURIComponent(query)}`}`, {
      method: 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
    });

  test('ping, a plain query in TabSeparated, and the headers of an answer', async () => {
    const ping = await fetch(`${server.url}/ping`);
    assert.equal(ping.status, 200);
    assert.equal(await ping.text(), 'Ok.\n');
    const res = await post(undefined, "SELECT 1 + 1, version() LIKE '26.%'");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '2\t1\n');
    assert.equal(res.headers.get('x-clickhouse-format'), 'TabSeparated');
    assert.ok(res.headers.get('x-clickhouse-query-id'));
    assert.equal(JSON.parse(res.headers.get('x-clickhouse-summary')!).read_rows, '1');
  });

  test("errors: ClickHouse's status, exception code header and text, as the client parses them", async () => {
    const missing = await post(undefined, 'SELECT * FROM front.nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-clickhouse-exception-code'), '60');
    assert.match(
      await missing.text(),
      /^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\) \(version 26\.[\d.]+\)\n$/s,
    );
    const syntax = await post(undefined, 'SELEC 1');
    assert.equal(syntax.status, 400);
    await assert.rejects(ch.query({ query: 'SELEC 1' }), { code: '62', type: 'SYNTAX_ERROR' });
  });

  test('INSERT data in the body: plain, chunked and gzip; the summary counts written rows', async () => {
    const q = 'INSERT INTO front.t FORMAT JSONEachRow';
    const plain = await post(q, '{"a":1,"b":"x"}\n');
    assert.equal(plain.status, 200);
    assert.equal(JSON.parse(plain.headers.get('x-clickhouse-summary')!).written_rows, '1');
    const chunks = ['{"a":2,', '"b":"y"}\n{"a":3,"b":"z"}\n'].map((c) => new TextEncoder().encode(c));
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const chunked = await fetch(`${server.url}/?query=${encodeURIComponent(q)}`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 200, await chunked.clone().text());
    const zipped = await post(q, gzipSync('{"a":4,"b":"\u00e9"}\n'), { 'Content-Encoding': 'gzip' });
    assert.equal(zipped.status, 200);
    const rs = await ch.query({ query: 'SELECT a, b FROM front.t ORDER BY a', format: 'JSONEachRow' });
    assert.deepEqual(await rs.json(), [
      { a: 1, b: 'x' },
      { a: 2, b: 'y' },
      { a: 3, b: 'z' },
      { a: 4, b: '\u00e9' },
    ]);
  });

  test('settings and the database apply to their own request only', async () => {
    const get = async (client: ClickHouseClient, settings = {}) => {
      const rs = await client.query({
        query: "SELECT getSetting('max_threads') AS m, currentDatabase() AS d",
        format: 'JSONEachRow',
        clickhouse_settings: settings,
      });
      return (await rs.json<{ m: number; d: string }>())[0]!;
    };
    const defaults = await get(ch);
    assert.deepEqual(await get(ch, { max_threads: 3 }), { m: 3, d: 'default' });
    assert.deepEqual(await get(ch), defaults, 'reset after the request');
    const inFront = createClient({ url: server.url, database: 'front' });
    try {
      assert.equal((await get(inFront)).d, 'front');
      const rs = await inFront.query({ query: 'SELECT count() AS n FROM t', format: 'JSONEachRow' });
      assert.deepEqual(await rs.json(), [{ n: 4 }]); // 64-bit integers unquoted: the 26.x default
    } finally {
      await inFront.close();
    }
    assert.equal((await get(ch)).d, 'default');
    await assert.rejects(
      ch.query({ query: 'SELECT 1', clickhouse_settings: { no_such_setting: 1 } as never }),
      {
        code: '115',
      },
    );
    assert.deepEqual(await get(ch), defaults, 'a refused setting leaves nothing behind');
  });
});

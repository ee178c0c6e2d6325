// The dashboard routes (cli/dashboard.ts) on a real HTTP server with a fake data source: the page and its
// assets, the JSON routes and their cache, and the token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDashboard, presentedToken, tokenMatches } from '../../../cli/dashboard.ts';
import type { DashboardSource, TimeSeriesData } from '../../../cli/dashboard/queries.ts';
import { loadConfig } from '../../../core/config.ts';
import { startHttpServer } from '../../../core/http.ts';
import { createLogger } from '../../../core/log.ts';
import type { IncomingMessage } from 'node:http';

const logger = createLogger('test', undefined, 'silent');
const TOKEN = 's3cret-dashboard-token';

function fakeSource() {
  const calls: string[] = [];
  const series = (minutes: number): TimeSeriesData => ({
    generatedAt: 0,
    minutes,
    bucketSeconds: 60,
    labels: [0, 60],
    series: [{ name: 'COMPLETE', counts: [1, 2] }],
    total: 3,
  });
  let failFields = false;
  const source: DashboardSource = {
    async pipeline() {
      calls.push('pipeline');
      return {
        generatedAt: 0,
        resources: [],
        totals: { rows: 1, rowsLastMinute: 0, consumerLag: 0, deadLetters: 0, maxFreshnessSeconds: null },
        errors: [],
      };
    },
    async runs(minutes) {
      calls.push(`runs:${minutes}`);
      return series(minutes);
    },
    async audit(minutes) {
      calls.push(`audit:${minutes}`);
      return { ...series(minutes), topUsers: [] };
    },
    async fields() {
      calls.push('fields');
      if (failFields) throw new Error(`ClickHouse said no (password ${PASSWORD})`);
      return { generatedAt: 0, byField: [], byClass: [], total: 0 };
    },
    async close() {
      calls.push('close');
    },
  };
  return { source, calls, failFields: () => void (failFields = true) };
}

const PASSWORD = 'ch-password-for-the-redaction-test';

async function serve(token?: string) {
  const env: Record<string, string> = { CLICKHOUSE_PASSWORD: PASSWORD };
  if (token) env.DASHBOARD_TOKEN = token;
  const config = loadConfig({ env, cwd: '/nonexistent' });
  const fake = fakeSource();
  const dashboard = createDashboard(config, { source: fake.source, cacheMs: 60_000, logger });
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    health: () => ({ ok: true }),
    routes: dashboard.routes,
    logger,
  });
  return { http, dashboard, ...fake };
}

describe('dashboard routes without a token', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve();
  });
  after(async () => {
    await s.http.close();
    await s.dashboard.close();
  });

  test('the page at / with a strict CSP, its assets and Chart.js from node_modules', async () => {
    const res = await fetch(`${s.http.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.match(res.headers.get('content-security-policy')!, /script-src 'self';/);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    assert.ok(!html.includes('__ASSET_QUERY__'), 'placeholders replaced');
    for (const asset of ['/assets/app.css', '/assets/chart.umd.min.js', '/assets/app.js']) {
      assert.ok(html.includes(`"${asset}"`), asset);
      const a = await fetch(`${s.http.url}${asset}`);
      assert.equal(a.status, 200, asset);
      assert.ok((await a.text()).length > 100, asset);
    }
    const chart = await (await fetch(`${s.http.url}/assets/chart.umd.min.js`)).text();
    assert.match(chart, /Chart\.js v4/);
    for (const id of ['pipeline', 'runs', 'audit', 'fields', 'runs-chart', 'audit-chart', 'fields-chart']) {
      assert.ok(html.includes(`id="${id}"`), id);
    }
    assert.equal((await fetch(`${s.http.url}/index.html`, { method: 'HEAD' })).status, 200);
  });

  test('JSON routes pass the window on, and answers are cached per key', async () => {
    const runs = await fetch(`${s.http.url}/api/runs?minutes=15`);
    assert.equal(runs.status, 200);
    assert.equal(runs.headers.get('cache-control'), 'no-store');
    assert.equal(((await runs.json()) as TimeSeriesData).minutes, 15);
    await fetch(`${s.http.url}/api/runs?minutes=15`);
    await fetch(`${s.http.url}/api/runs?minutes=1`); // clamped to 5: another key
    await Promise.all([1, 2, 3].map(() => fetch(`${s.http.url}/api/pipeline`)));
    await fetch(`${s.http.url}/api/audit`);
    assert.deepEqual(s.calls, ['runs:15', 'runs:5', 'pipeline', 'audit:60']);
  });

  test('a failing query is a 502 with the message, secrets redacted', async () => {
    s.failFields();
    const res = await fetch(`${s.http.url}/api/fields`);
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: string };
    assert.equal(body.error, 'ClickHouse said no (password ***)');
  });

  test('other methods are refused; other paths are not the dashboard', async () => {
    const post = await fetch(`${s.http.url}/api/runs`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal((await fetch(`${s.http.url}/nope`)).status, 404);
    assert.equal((await fetch(`${s.http.url}/assets/../package.json`)).status, 404);
    assert.equal((await fetch(`${s.http.url}/assets/secret.js`)).status, 404);
  });
});

describe('dashboard routes with DASHBOARD_TOKEN', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve(TOKEN);
  });
  after(async () => {
    await s.http.close();
    await s.dashboard.close();
  });

  test('every dashboard route needs the token; /healthz and /metrics do not', async () => {
    for (const path of ['/', '/assets/app.js', '/assets/chart.umd.min.js', '/api/pipeline', '/api/fields']) {
      const res = await fetch(`${s.http.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.match(res.headers.get('www-authenticate')!, /^Bearer/);
      assert.equal((await fetch(`${s.http.url}${path}?token=wrong`)).status, 401, `${path} wrong token`);
      const bad = await fetch(`${s.http.url}${path}`, { headers: { authorization: 'Bearer wrong' } });
      assert.equal(bad.status, 401, `${path} wrong bearer`);
    }
    assert.deepEqual(s.calls, [], 'nothing was queried');
    assert.equal((await fetch(`${s.http.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${s.http.url}/metrics`)).status, 200);
  });

  test('a Bearer header or ?token= opens them', async () => {
    const header = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${s.http.url}/api/pipeline`, { headers: header })).status, 200);
    assert.equal((await fetch(`${s.http.url}/assets/app.js`, { headers: header })).status, 200);
    assert.equal((await fetch(`${s.http.url}/api/pipeline?token=${TOKEN}`)).status, 200);
  });

  test('opened with ?token=, the page passes it on to its assets (escaped); with a header it does not', async () => {
    const odd = 'a"b<c&d';
    const s2 = await serve(odd);
    try {
      const html = await (await fetch(`${s2.http.url}/?token=${encodeURIComponent(odd)}`)).text();
      assert.ok(html.includes(`"/assets/app.js?token=${encodeURIComponent(odd)}"`));
      assert.ok(!html.includes(odd), 'the raw token never lands in the HTML');
      const viaHeader = await (
        await fetch(`${s2.http.url}/`, { headers: { authorization: `Bearer ${odd}` } })
      ).text();
      assert.ok(viaHeader.includes('"/assets/app.js"'));
    } finally {
      await s2.http.close();
    }
  });

  test('token helpers: header first, then query; constant-time match', () => {
    const req = (authorization?: string) =>
      ({ headers: authorization ? { authorization } : {} }) as IncomingMessage;
    assert.equal(presentedToken(req('Bearer abc'), new URL('http://x/?token=def')), 'abc');
    assert.equal(presentedToken(req('bearer  abc '), new URL('http://x/')), 'abc');
    assert.equal(presentedToken(req('Basic abc'), new URL('http://x/?token=def')), 'def');
    assert.equal(presentedToken(req(), new URL('http://x/')), null);
    assert.equal(tokenMatches('abc', 'abc'), true);
    assert.equal(tokenMatches('abcd', 'abc'), false);
    assert.equal(tokenMatches('', 'abc'), false);
    assert.equal(tokenMatches(null, 'abc'), false);
  });
});

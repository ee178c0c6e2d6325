/**
 * The dashboard against the real stack.
 *
 * 1. The dash_* views (sinks/views.ts) on the real ClickHouse: every one is created, has the columns it
 *    declares and answers with the right numbers on hand-made rows; a second run changes nothing; the
 *    audit materialized view counts a redelivered event once; audit rows already present when the views
 *    are first created are backfilled.
 * 2. End to end: the simulator ticks on the real clock, producers and sinks run in-process, the
 *    dashboard is served with a DASHBOARD_TOKEN, and headless Chromium (Debian's, driven by
 *    playwright-core) opens `/?token=…`. The charts must show real numbers for every resource, and the
 *    audit and pipeline totals must grow while the simulator advances. A screenshot is saved to
 *    test-artifacts/dashboard.png. Without /usr/bin/chromium the test fails: `npm test` installs it
 *    with apt as root (test/run.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createDashboard, type Dashboard } from '../../cli/dashboard.ts';
import { createClickHouse } from '../../core/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import { startHttpServer, type RunningHttpServer } from '../../core/http.ts';
import { createKafka } from '../../core/kafka.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { startProducers, type RunningProducers } from '../../producers/daemon.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { createStatements } from '../../sinks/schema/ddl.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import { valueSchema } from '../../schemas/index.ts';
import {
  AUDIT_PER_MINUTE,
  FIELD_STATS,
  PIPELINE_FRESHNESS,
  RUNS_BY_STATUS,
  createDashboardViews,
  dashboardObjects,
} from '../../sinks/views.ts';
import { quietLogger, testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCREENSHOT = path.join(ROOT, 'test-artifacts', 'dashboard.png');
const CHROMIUM = '/usr/bin/chromium';

async function select<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await ch.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function insert(ch: ClickHouseClient, table: string, values: Record<string, unknown>[]): Promise<void> {
  await ch.insert({ table, values, format: 'JSONEachRow' });
}

describe('dashboard views on ClickHouse', () => {
  const database = uniqueName('itdashviews_');
  const backfillDb = uniqueName('itdashfill_');
  let ch: ClickHouseClient;
  const T = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000; // a whole minute, ten minutes ago
  const nowS = () => Math.floor(Date.now() / 1000);
  let offset = 1;
  const meta = () => ({ _topic: 't', _partition: 0, _offset: offset++, _ingested_at: nowS() });
  const envelope = (hash: string, fetchedAt = T) => ({
    _source_endpoint: 'test',
    _fetched_at: fetchedAt,
    _content_hash: hash,
    _deleted: 0,
    _raw_json: '{}',
  });
  const audit = (hash: string, ms: number, logType: string, email: string) => ({
    ...envelope(hash),
    timestamp_millis: String(ms),
    timestamp_ms: ms,
    email,
    log_type: logType,
    ...meta(),
  });

  before(() => {
    ch = createClickHouse(testConfig('dashviews'));
  });
  after(async () => {
    for (const db of [database, backfillDb])
      await ch?.command({ query: `DROP DATABASE IF EXISTS \`${db}\`` });
    await ch?.close();
  });

  test('every view is created with its declared columns, and a second run changes nothing', async () => {
    const { ran, failed } = await createDashboardViews(ch, database);
    assert.deepEqual(failed, [], 'nothing refused');
    assert.ok(ran.length > 0);
    for (const object of dashboardObjects(database)) {
      const columns = await select<{ name: string }>(
        ch,
        `SELECT name FROM system.columns WHERE database = '${database}' AND table = '${object.name}'`,
      );
      if (object.kind !== 'materialized view' || columns.length > 0) {
        assert.deepEqual(
          columns.map((c) => c.name),
          [...object.columns],
          `${object.name}: columns`,
        );
      }
      const [exists] = await select<{ n: string }>(
        ch,
        `SELECT count() AS n FROM system.tables WHERE database = '${database}' AND name = '${object.name}'`,
      );
      assert.equal(Number(exists!.n), 1, `${object.name} exists`);
      if (object.kind !== 'materialized view') await select(ch, `SELECT * FROM ${database}.${object.name}`);
    }
    assert.deepEqual(await createDashboardViews(ch, database), { ran: [], failed: [] }, 'idempotent');
  });

  test('the views answer with the right numbers', async () => {
    const db = (t: string) => `${database}.${t}`;
    const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
    // Runs: two versions of r1 (the newer one wins), r2, and r3 deleted.
    await insert(ch, db('runs'), [
      { ...envelope('a'), id: 'r1', status: 'RUNNING', start_timestamp: ns(T + 5_000), ...meta() },
      { ...envelope('b'), id: 'r1', status: 'COMPLETE', start_timestamp: ns(T + 5_000), ...meta() },
      { ...envelope('c'), id: 'r2', status: 'FAILED', start_timestamp: ns(T + 65_000), ...meta() },
      { ...envelope('d'), _deleted: 1, id: 'r3', status: 'COMPLETE', start_timestamp: ns(T), ...meta() },
    ]);
    const runs = await select<{ minute: string; status: string; runs: string }>(
      ch,
      `SELECT toUInt32(minute) AS minute, status, runs FROM ${db(RUNS_BY_STATUS)} ORDER BY minute, status`,
    );
    assert.deepEqual(
      runs.map((r) => [Number(r.minute), r.status, Number(r.runs)]),
      [
        [T / 1000, 'COMPLETE', 1],
        [T / 1000 + 60, 'FAILED', 1],
      ],
    );

    // Results and fields: doc 0 is an Invoice, doc 1 has no class. A child row carries its parent's
    // Kafka offset (the _current views match items to the parent's current version by it).
    const docOffset = (d: number) => 1_000 + d;
    const doc = (d: number, cls: string | null) => ({
      ...envelope(`rr${d}`),
      run_id: 'r1',
      file_index: 0,
      document_index: d,
      class_name: cls,
      ...meta(),
      _offset: docOffset(d),
    });
    const field = (d: number, i: number, name: string, error: string | null, confidence: number | null) => ({
      run_id: 'r1',
      file_index: 0,
      document_index: d,
      _idx: i,
      name,
      error,
      confidence,
      valid: error ? 0 : 1,
      ...meta(),
      _offset: docOffset(d),
    });
    await insert(ch, db('runs_results_fields'), [
      field(0, 0, 'total', null, 0.9),
      field(0, 1, 'date', 'Extraction failed', 0.5),
      field(1, 0, 'total', '', 0.7),
      field(1, 1, 'date', null, null),
    ]);
    await insert(ch, db('runs_results'), [doc(0, 'Invoice'), doc(1, null)]);
    const fields = await select<Record<string, string | null>>(
      ch,
      `SELECT * FROM ${db(FIELD_STATS)} ORDER BY field_name, class_name`,
    );
    assert.deepEqual(
      fields.map((f) => [
        f.field_name,
        f.class_name,
        Number(f.fields),
        Number(f.errors),
        Number(f.error_rate),
        Number(f.invalid),
        Number(f.scored),
        f.mean_confidence === null ? null : Number(Number(f.mean_confidence).toFixed(6)),
      ]),
      [
        ['date', '', 1, 0, 0, 0, 0, null],
        ['date', 'Invoice', 1, 1, 1, 1, 1, 0.5],
        ['total', '', 1, 0, 0, 0, 1, 0.7],
        ['total', 'Invoice', 1, 0, 0, 0, 1, 0.9],
      ],
    );

    // Audit: three events in minute T (one delivered twice), one in the next minute.
    const events = [
      audit('e1', T + 1_000, 'login', 'a@x'),
      audit('e2', T + 2_000, 'login', 'a@x'),
      audit('e3', T + 3_000, 'api', 'b@x'),
      audit('e4', T + 61_000, 'api', 'b@x'),
    ];
    await insert(ch, db('audit_logs'), events);
    await insert(ch, db('audit_logs'), [{ ...events[0]!, ...meta() }]); // redelivered
    const perMinute = await select<{ minute: string; log_type: string; email: string; events: string }>(
      ch,
      `SELECT toUInt32(minute) AS minute, log_type, email, events FROM ${db(AUDIT_PER_MINUTE)} ` +
        'ORDER BY minute, log_type',
    );
    assert.deepEqual(
      perMinute.map((r) => [Number(r.minute), r.log_type, r.email, Number(r.events)]),
      [
        [T / 1000, 'api', 'b@x', 1],
        [T / 1000, 'login', 'a@x', 2],
        [T / 1000 + 60, 'api', 'b@x', 1],
      ],
    );

    const fresh = await select<{
      resource: string;
      rows: string;
      freshness_seconds: string | null;
      rows_last_minute: string;
    }>(ch, `SELECT * FROM ${db(PIPELINE_FRESHNESS)}`);
    assert.deepEqual(fresh.map((r) => r.resource).sort(), [...RESOURCE_NAMES].sort());
    const byResource = new Map(fresh.map((r) => [r.resource, r]));
    assert.equal(Number(byResource.get('audit_logs')!.rows), 5);
    assert.equal(Number(byResource.get('audit_logs')!.rows_last_minute), 5);
    assert.equal(Number(byResource.get('runs')!.rows), 4);
    const age = Number(byResource.get('runs')!.freshness_seconds);
    assert.ok(age >= 590 && age <= 700, `runs freshness ${age} s, about ten minutes`);
    assert.equal(byResource.get('batches')!.freshness_seconds, null, 'empty table: no freshness');
  });

  test('audit rows that predate the views are backfilled once', async () => {
    const layout = deriveLayout('audit_logs', valueSchema('audit_logs'), { database: backfillDb });
    for (const statement of createStatements(layout)) await ch.command({ query: statement });
    await insert(ch, `${backfillDb}.audit_logs`, [
      audit('p1', T, 'login', 'a@x'),
      audit('p2', T + 1_000, 'login', 'a@x'),
    ]);
    await createDashboardViews(ch, backfillDb);
    await insert(ch, `${backfillDb}.audit_logs`, [audit('p3', T + 2_000, 'login', 'a@x')]);
    await createDashboardViews(ch, backfillDb); // no second backfill
    const [row] = await select<{ n: string }>(
      ch,
      `SELECT sum(events) AS n FROM ${backfillDb}.${AUDIT_PER_MINUTE}`,
    );
    assert.equal(Number(row!.n), 3);
  });
});

describe('the dashboard page in headless Chromium, against the simulator', { timeout: 240_000 }, () => {
  const prefix = uniqueName('itdash');
  const TOKEN = 'dash-secret-token';
  let sim: Simulator;
  let config: Config;
  let sinks: RunningSinks | undefined;
  let producers: RunningProducers | undefined;
  let dashboard: Dashboard | undefined;
  let http: RunningHttpServer | undefined;
  let browser: BrowserContext | undefined;
  let profile: string | undefined;

  before(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'dashboard-it',
      startTime: Date.now(),
      tickMs: 250,
      speed: 1,
      scale: {
        batches: 40,
        runs: 20,
        filesPerRun: 2,
        docsPerFile: 2,
        auditLogs: 600,
        conversations: 3,
        docsPerConversation: 2,
        queries: 3,
        files: 6,
      },
      growth: { auditPerMin: 120, runsPerMin: 6, batchesPerMin: 6 },
      logger: quietLogger,
    });
    config = testConfig(
      prefix,
      {
        producers: {
          files: sim.expected.files().map((f) => f.path),
          queryIds: sim.expected.queryIds(),
          initialLookbackMs: 24 * 3_600_000,
          defaultIntervalMs: 2_000,
          auditLogsSettleMs: 0,
        },
        sinks: { flushMs: 300 },
      },
      { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token, DASHBOARD_TOKEN: TOKEN },
    );
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await http?.close();
    await dashboard?.close();
    await producers?.stop().catch(() => undefined);
    await sinks?.stop().catch(() => undefined);
    await sim?.close();
    if (config) {
      const ch = createClickHouse(config);
      await ch.command({ query: `DROP DATABASE IF EXISTS \`${config.clickhouse.database}\`` });
      await ch.close();
      const admin = createKafka(config, quietLogger, 'cleanup').admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
      if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  /**
   * What the page shows, read from the data attributes it sets and from the Chart.js instances. A string:
   * tsx compiles functions with name helpers (__name) that do not exist in the page.
   */
  const SHOWN = `(() => {
    const d = document;
    const total = (id) => Number(d.getElementById(id)?.dataset.total ?? 'NaN');
    const chartSum = (id) => {
      const chart = window.Chart.getChart(id);
      if (!chart) return NaN;
      return chart.data.datasets.reduce((n, ds) => n + ds.data.reduce((m, v) => m + (v ?? 0), 0), 0);
    };
    const rows = Object.fromEntries(
      [...d.querySelectorAll('#pipeline-rows tr')].map((tr) => [tr.dataset.resource, Number(tr.dataset.rows)]),
    );
    return {
      refreshes: Number(d.body.dataset.refreshes),
      error: d.body.dataset.error ?? '',
      pipelineTotal: total('pipeline'),
      runs: total('runs'),
      audit: total('audit'),
      fields: total('fields'),
      runsChart: chartSum('runs-chart'),
      auditChart: chartSum('audit-chart'),
      fieldsBars: chartSum('fields-chart'),
      rows,
    };
  })()`;

  interface Shown {
    refreshes: number;
    error: string;
    pipelineTotal: number;
    runs: number;
    audit: number;
    fields: number;
    runsChart: number;
    auditChart: number;
    fieldsBars: number;
    rows: Record<string, number>;
  }

  const shown = (page: Page): Promise<Shown> => page.evaluate<Shown>(SHOWN);

  test('the charts render real numbers for every resource, and they grow', async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); npm test does as root`,
    );
    const started = Date.now();
    sinks = await startSinks(config, quietLogger);
    producers = await startProducers(config, quietLogger, { now: () => sim.now() });
    dashboard = createDashboard(config, { cacheMs: 1_000, logger: quietLogger });
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      health: () => ({ ok: true }),
      routes: dashboard.routes,
      logger: quietLogger,
    });

    // The token guards the page, its assets and its data, but not /healthz.
    assert.equal((await fetch(`${http.url}/`)).status, 401);
    assert.equal((await fetch(`${http.url}/api/pipeline?token=wrong`)).status, 401);
    assert.equal((await fetch(`${http.url}/healthz`)).status, 200);

    profile = mkdtempSync(path.join(tmpdir(), 'ibs-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    const response = await page.goto(`${http.url}/?token=${TOKEN}&refresh=1000`);
    assert.equal(response?.status(), 200);

    let first: Shown | undefined;
    await waitFor(
      'every resource to show rows on the page',
      async () => {
        first = await shown(page);
        return (
          first.refreshes > 0 &&
          RESOURCE_NAMES.every((r) => (first!.rows[r] ?? 0) > 0) &&
          first.runs > 0 &&
          first.audit > 0 &&
          first.fields > 0
        );
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the page showed ${JSON.stringify(first)}; ${problems.join(' | ')}`);
    });
    const filled = Date.now();
    assert.equal(first!.error, '', 'no section failed');
    assert.equal(first!.runsChart, first!.runs, 'the runs chart draws the runs total');
    assert.equal(first!.auditChart, first!.audit, 'the audit chart draws the audit total');
    assert.ok(first!.fieldsBars > 0, 'field accuracy bars');

    let later: Shown | undefined;
    await waitFor(
      'the audit count and the pipeline total to grow',
      async () => {
        later = await shown(page);
        return later.audit > first!.audit && later.pipelineTotal > first!.pipelineTotal;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; first ${JSON.stringify(first)}, later ${JSON.stringify(later)}`);
    });
    assert.ok(later!.refreshes > first!.refreshes, 'the page refreshed by itself');
    assert.ok(later!.auditChart > first!.auditChart, 'the audit chart grew');
    for (const r of RESOURCE_NAMES) assert.ok(later!.rows[r]! >= first!.rows[r]!, `${r}: rows never shrink`);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, [], 'no errors in the page');
    quietLogger.info(
      { fillMs: filled - started, totalMs: Date.now() - started, first, later },
      'dashboard end to end',
    );
  });
});

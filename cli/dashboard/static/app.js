// The dashboard page: polls the JSON routes every few seconds and draws them with Chart.js. Plain
// browser JavaScript, no build step. Every number is computed by the server (cli/dashboard/queries.ts);
// this file only lays it out. Text from the data goes in through textContent, never as HTML.
//
// For tests and scripts each section carries what it shows: data-total on #pipeline (rows), #runs,
// #audit and #fields, data-resource / data-rows / data-lag on the pipeline rows, and on <body>
// data-refreshes (completed refreshes) and data-error (the last failure, empty when none).
/* global Chart, document, window, fetch, location, URLSearchParams, setTimeout, clearTimeout */
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  const REFRESH_MS = Math.max(1000, Number(params.get('refresh')) || 3000);
  const $ = (id) => document.getElementById(id);
  const windowSelect = $('window');
  if (params.get('minutes')) {
    const option = document.createElement('option');
    option.value = params.get('minutes');
    option.textContent = params.get('minutes') + ' min';
    if (![...windowSelect.options].some((o) => o.value === option.value)) windowSelect.append(option);
    windowSelect.value = option.value;
  }

  const RUN_COLORS = {
    RUNNING: '#2f6fed',
    COMPLETE: '#2e9e5b',
    FAILED: '#d64545',
    CANCELLED: '#8a94a3',
    STOPPED_AT_CHECKPOINT: '#d98a1c',
  };
  const PALETTE = [
    '#2f6fed',
    '#2e9e5b',
    '#d98a1c',
    '#8e5bd9',
    '#d64545',
    '#16a2b8',
    '#c2559b',
    '#6b8e23',
    '#a0522d',
    '#5f6b7a',
    '#e0b000',
    '#3b5b92',
  ];
  const colorOf = (name) => {
    if (RUN_COLORS[name]) return RUN_COLORS[name];
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  };

  const fmt = new Intl.NumberFormat();
  const number = (v) => (v === null || v === undefined ? '–' : fmt.format(v));
  const percent = (v) => (v === null || v === undefined ? '–' : (v * 100).toFixed(1) + '%');
  const seconds = (s) => {
    if (s === null || s === undefined) return '–';
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  };
  const bucketName = (b) => (b < 3600 ? b / 60 + ' min' : b / 3600 + ' h');
  const timeLabel = (t, minutes) => {
    const d = new Date(t * 1000);
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
    return minutes > 1440 ? d.toLocaleDateString([], { month: '2-digit', day: '2-digit' }) + ' ' + hm : hm;
  };

  async function getJson(path) {
    const res = await fetch(path, { headers, cache: 'no-store' });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: the status tells
    }
    if (!res.ok) throw new Error(path.split('?')[0] + ': ' + ((body && body.error) || 'HTTP ' + res.status));
    return body;
  }

  Chart.defaults.font.size = 11;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  const charts = {};

  /** Creates the chart the first time, then swaps its data in place (keeping series the user hid). */
  function draw(id, type, labels, datasets, options) {
    const existing = charts[id];
    if (!existing) {
      charts[id] = new Chart($(id), { type, data: { labels, datasets }, options });
      return;
    }
    const hidden = new Map(
      existing.data.datasets.map((d, i) => [d.label, existing.getDatasetMeta(i).hidden]),
    );
    existing.data.labels = labels;
    existing.data.datasets = datasets;
    existing.options = options;
    existing.update('none');
    existing.data.datasets.forEach((d, i) => {
      if (hidden.get(d.label) !== undefined) existing.getDatasetMeta(i).hidden = hidden.get(d.label);
    });
    existing.update('none');
  }

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  }

  function stacked(yTitle) {
    return {
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
      scales: {
        x: { stacked: true, ticks: { maxTicksLimit: 12, maxRotation: 0 } },
        y: {
          stacked: true,
          beginAtZero: true,
          ticks: { precision: 0 },
          title: { display: true, text: yTitle },
        },
      },
    };
  }

  function renderPipeline(data) {
    const t = data.totals;
    $('kpi-rows').textContent = number(t.rows);
    $('kpi-rate').textContent = number(t.rowsLastMinute);
    $('kpi-lag').textContent = number(t.consumerLag);
    $('kpi-dlq').textContent = number(t.deadLetters);
    $('kpi-fresh').textContent = seconds(t.maxFreshnessSeconds);
    $('pipeline').dataset.total = String(t.rows);
    const body = $('pipeline-rows');
    body.replaceChildren();
    for (const r of data.resources) {
      const row = document.createElement('tr');
      row.dataset.resource = r.resource;
      row.dataset.rows = String(r.rows ?? 0);
      row.dataset.lag = String(r.consumerLag ?? '');
      cell(row, r.resource);
      cell(row, number(r.rows), r.rows ? '' : 'warn');
      cell(row, number(r.rowsLastMinute));
      cell(row, number(r.topicMessages));
      cell(row, number(r.consumerLag), r.consumerLag > 1000 ? 'warn' : '');
      cell(
        row,
        seconds(r.freshnessSeconds),
        r.freshnessSeconds === null || r.freshnessSeconds > 900 ? 'warn' : '',
      );
      const dlq = (r.producerDeadLetters ?? 0) + (r.sinkDeadLetters ?? 0);
      cell(row, number(r.producerDeadLetters) + ' / ' + number(r.sinkDeadLetters), dlq > 0 ? 'bad' : '');
      cell(row, r.lastPoll ? new Date(r.lastPoll).toLocaleTimeString() : '–');
      body.append(row);
    }
    draw(
      'pipeline-chart',
      'bar',
      data.resources.map((r) => r.resource),
      [
        { label: 'rows', data: data.resources.map((r) => r.rows ?? 0), backgroundColor: '#2f6fed' },
        {
          label: 'rows, last minute',
          data: data.resources.map((r) => r.rowsLastMinute ?? 0),
          backgroundColor: '#2e9e5b',
        },
      ],
      {
        indexAxis: 'y',
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
        scales: { x: { type: 'logarithmic', title: { display: true, text: 'rows (log scale)' } } },
      },
    );
    return data.errors || [];
  }

  function renderSeries(id, data, yTitle) {
    $(id).dataset.total = String(data.total);
    draw(
      id + '-chart',
      'bar',
      data.labels.map((t) => timeLabel(t, data.minutes)),
      data.series.map((s) => ({ label: s.name, data: s.counts, backgroundColor: colorOf(s.name) })),
      stacked(yTitle + ' per ' + bucketName(data.bucketSeconds)),
    );
  }

  function renderAudit(data) {
    renderSeries('audit', data, 'events');
    $('audit-users').textContent =
      data.topUsers.map((u) => u.email + ' (' + number(u.events) + ')').join(', ') || '–';
  }

  function renderFields(data) {
    $('fields').dataset.total = String(data.total);
    draw(
      'fields-chart',
      'bar',
      data.byField.map((f) => f.field_name || '(unnamed)'),
      [
        {
          label: 'error rate %',
          data: data.byField.map((f) => f.error_rate * 100),
          backgroundColor: '#d64545',
        },
        {
          label: 'mean confidence %',
          data: data.byField.map((f) => (f.mean_confidence === null ? null : f.mean_confidence * 100)),
          backgroundColor: '#2e9e5b',
        },
      ],
      {
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
        scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: '%' } } },
      },
    );
    $('fields-note').hidden = data.total === 0 || data.byField.some((f) => f.mean_confidence !== null);
    const body = $('fields-rows');
    body.replaceChildren();
    for (const f of data.byClass) {
      const row = document.createElement('tr');
      cell(row, f.field_name || '(unnamed)');
      cell(row, f.class_name || '(none)');
      cell(row, number(f.fields));
      cell(row, percent(f.error_rate), f.error_rate > 0.1 ? 'bad' : '');
      cell(row, number(f.invalid));
      cell(row, percent(f.mean_confidence));
      body.append(row);
    }
  }

  let timer = null;
  let refreshes = 0;

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden) {
      timer = setTimeout(refresh, REFRESH_MS);
      return;
    }
    const minutes = windowSelect.value;
    const steps = [
      getJson('/api/pipeline').then(renderPipeline),
      getJson('/api/runs?minutes=' + minutes).then((d) => renderSeries('runs', d, 'runs')),
      getJson('/api/audit?minutes=' + minutes).then(renderAudit),
      getJson('/api/fields').then(renderFields),
    ];
    const results = await Promise.allSettled(steps);
    const problems = [];
    for (const r of results) {
      if (r.status === 'rejected')
        problems.push(String(r.reason && r.reason.message ? r.reason.message : r.reason));
      else if (Array.isArray(r.value)) problems.push(...r.value);
    }
    const banner = $('errors');
    banner.hidden = problems.length === 0;
    banner.textContent = problems.join('\n');
    const allFailed = results.every((r) => r.status === 'rejected');
    $('live').className = 'live ' + (allFailed ? 'failed' : 'ok');
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.error = problems.join('; ');
    timer = setTimeout(refresh, REFRESH_MS);
  }

  windowSelect.addEventListener('change', () => void refresh());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
  window.addEventListener('load', () => void refresh());
})();

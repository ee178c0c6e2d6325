// The dashboard's data: every number the page shows comes from here, computed on the server against
// ClickHouse (the dash_* views of sinks/views.ts) and Kafka (collectStatus, as `instabase-stream status`
// prints it). Shapes are chart-ready: one label per time bucket, gaps filled with zeros, one series per
// status or log type.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { qualifiedName } from '../../sinks/schema/sql.ts';
import { AUDIT_PER_MINUTE, FIELD_STATS, PIPELINE_FRESHNESS, RUNS_BY_STATUS } from '../../sinks/views.ts';
import { collectStatus, type ResourceStatus } from '../status.ts';

export interface PipelineResource extends ResourceStatus {
  /** Rows the sinks wrote in the last 60 seconds (from _ingested_at); null when unknown. */
  rowsLastMinute: number | null;
}

export interface PipelineData {
  generatedAt: number;
  resources: PipelineResource[];
  totals: {
    rows: number;
    rowsLastMinute: number;
    consumerLag: number;
    deadLetters: number;
    /** The stalest resource's freshness; null while some resource has no rows yet. */
    maxFreshnessSeconds: number | null;
  };
  /** What could not be read (Kafka or ClickHouse down): the rest is still shown. */
  errors: string[];
}

export interface Series {
  name: string;
  counts: number[];
}

export interface TimeSeriesData {
  generatedAt: number;
  minutes: number;
  bucketSeconds: number;
  /** Bucket starts, unix seconds, ascending and contiguous. */
  labels: number[];
  series: Series[];
  total: number;
}

export interface AuditData extends TimeSeriesData {
  topUsers: { email: string; events: number }[];
}

export interface FieldRow {
  field_name: string;
  class_name: string;
  fields: number;
  errors: number;
  error_rate: number;
  invalid: number;
  scored: number;
  mean_confidence: number | null;
}

export interface FieldsData {
  generatedAt: number;
  /** Per field name, over every class. */
  byField: Omit<FieldRow, 'class_name'>[];
  /** Per field name and class, as dash_field_stats has them. */
  byClass: FieldRow[];
  total: number;
}

/** What the routes need; the tests substitute fakes. */
export interface DashboardSource {
  pipeline(): Promise<PipelineData>;
  runs(minutes: number): Promise<TimeSeriesData>;
  audit(minutes: number): Promise<AuditData>;
  fields(): Promise<FieldsData>;
  close(): Promise<void>;
}

/** Windows the page offers; anything else is clamped into [MIN_MINUTES, MAX_MINUTES]. */
export const DEFAULT_MINUTES = 60;
export const MIN_MINUTES = 5;
export const MAX_MINUTES = 7 * 24 * 60;
const BUCKETS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600];
const MAX_POINTS = 180;

export function clampMinutes(value: string | null | undefined): number {
  const n = Number(value);
  if (value == null || value === '' || !Number.isFinite(n)) return DEFAULT_MINUTES;
  return Math.min(MAX_MINUTES, Math.max(MIN_MINUTES, Math.round(n)));
}

/** The smallest bucket that keeps a window within MAX_POINTS points: a minute up to three hours. */
export function bucketSeconds(minutes: number): number {
  return BUCKETS.find((b) => (minutes * 60) / b <= MAX_POINTS) ?? BUCKETS[BUCKETS.length - 1]!;
}

/** Contiguous bucket starts covering [now - minutes, now]. */
export function timeBuckets(nowMs: number, minutes: number, bucket: number): number[] {
  const now = Math.floor(nowMs / 1000);
  const last = now - (now % bucket);
  const first = now - minutes * 60 - ((now - minutes * 60) % bucket);
  const out: number[] = [];
  for (let t = first; t <= last; t += bucket) out.push(t);
  return out;
}

/**
 * Rows of (bucket, name, count) → one zero-filled series per name, in the order of `order` first, then
 * by descending total. Rows outside the labels (clock skew, future timestamps) are dropped.
 */
export function toSeries(
  labels: readonly number[],
  rows: readonly { t: number | string; name: string; n: number | string }[],
  order: readonly string[] = [],
): { series: Series[]; total: number } {
  const index = new Map(labels.map((t, i) => [t, i]));
  const byName = new Map<string, number[]>();
  let total = 0;
  for (const row of rows) {
    const i = index.get(Number(row.t));
    if (i === undefined) continue;
    let counts = byName.get(row.name);
    if (!counts) byName.set(row.name, (counts = labels.map(() => 0)));
    counts[i]! += Number(row.n);
    total += Number(row.n);
  }
  const sum = (c: number[]) => c.reduce((a, b) => a + b, 0);
  const rank = (name: string) => {
    const i = order.indexOf(name);
    return i < 0 ? order.length : i;
  };
  const series = [...byName]
    .map(([name, counts]) => ({ name, counts }))
    .sort(
      (a, b) => rank(a.name) - rank(b.name) || sum(b.counts) - sum(a.counts) || (a.name < b.name ? -1 : 1),
    );
  return { series, total };
}

/** Per field over every class: counts add up, the mean confidence is weighted by the scored fields. */
export function fieldsByName(rows: readonly FieldRow[]): Omit<FieldRow, 'class_name'>[] {
  const out = new Map<string, Omit<FieldRow, 'class_name'> & { confidenceSum: number }>();
  for (const r of rows) {
    const f = out.get(r.field_name) ?? {
      field_name: r.field_name,
      fields: 0,
      errors: 0,
      error_rate: 0,
      invalid: 0,
      scored: 0,
      mean_confidence: null,
      confidenceSum: 0,
    };
    f.fields += r.fields;
    f.errors += r.errors;
    f.invalid += r.invalid;
    if (r.mean_confidence !== null && r.scored > 0) {
      f.scored += r.scored;
      f.confidenceSum += r.mean_confidence * r.scored;
    }
    out.set(r.field_name, f);
  }
  return [...out.values()]
    .map(({ confidenceSum, ...f }) => ({
      ...f,
      error_rate: f.fields ? f.errors / f.fields : 0,
      mean_confidence: f.scored ? confidenceSum / f.scored : null,
    }))
    .sort((a, b) => (a.field_name < b.field_name ? -1 : a.field_name > b.field_name ? 1 : 0));
}

/** Run statuses in the order the chart stacks them. */
export const RUN_STATUS_ORDER = ['RUNNING', 'COMPLETE', 'FAILED', 'CANCELLED', 'STOPPED_AT_CHECKPOINT'];

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function clickhouseSource(
  config: Config,
  clickhouse: ClickHouseClient,
  options: { status?: (config: Config) => Promise<ResourceStatus[]>; now?: () => number } = {},
): DashboardSource {
  const db = config.clickhouse.database;
  const now = options.now ?? Date.now;
  const status = options.status ?? collectStatus;
  const rows = async <T>(query: string): Promise<T[]> => {
    const rs = await clickhouse.query({ query, format: 'JSONEachRow' });
    return rs.json<T>();
  };

  async function timeSeries(
    view: string,
    name: string,
    value: string,
    minutes: number,
    order: readonly string[] = [],
  ): Promise<TimeSeriesData> {
    const generatedAt = now();
    const bucket = bucketSeconds(minutes);
    const labels = timeBuckets(generatedAt, minutes, bucket);
    const data = await rows<{ t: string; name: string; n: string }>(
      `SELECT intDiv(toUInt32(minute), ${bucket}) * ${bucket} AS t, ${name} AS name, sum(${value}) AS n ` +
        `FROM ${qualifiedName(db, view)} WHERE minute >= toDateTime(${labels[0]!}) ` +
        `GROUP BY t, name ORDER BY t`,
    );
    return { generatedAt, minutes, bucketSeconds: bucket, labels, ...toSeries(labels, data, order) };
  }

  return {
    async pipeline() {
      const errors: string[] = [];
      const [statuses, freshness] = await Promise.all([
        status(config).catch((err: unknown) => {
          errors.push(`Kafka/status: ${(err as Error).message ?? String(err)}`);
          return [] as ResourceStatus[];
        }),
        rows<{ resource: string; rows: string; freshness_seconds: string | null; rows_last_minute: string }>(
          `SELECT resource, rows, freshness_seconds, rows_last_minute FROM ${qualifiedName(db, PIPELINE_FRESHNESS)}`,
        ).catch((err: unknown) => {
          errors.push(`ClickHouse: ${(err as Error).message ?? String(err)}`);
          return [];
        }),
      ]);
      const fromView = new Map(freshness.map((r) => [r.resource, r]));
      const fromStatus = new Map(statuses.map((s) => [s.resource, s]));
      const resources: PipelineResource[] = RESOURCE_NAMES.map((resource) => {
        const s = fromStatus.get(resource);
        const v = fromView.get(resource);
        return {
          resource,
          topicMessages: s?.topicMessages ?? null,
          consumerLag: s?.consumerLag ?? null,
          rows: s?.rows ?? num(v?.rows),
          currentRows: s?.currentRows ?? null,
          producerDeadLetters: s?.producerDeadLetters ?? null,
          sinkDeadLetters: s?.sinkDeadLetters ?? null,
          freshnessSeconds: s?.freshnessSeconds ?? num(v?.freshness_seconds),
          lastPoll: s?.lastPoll ?? null,
          rowsLastMinute: num(v?.rows_last_minute),
        };
      });
      const sum = (f: (r: PipelineResource) => number | null) =>
        resources.reduce((n, r) => n + (f(r) ?? 0), 0);
      const fresh = resources.map((r) => r.freshnessSeconds);
      return {
        generatedAt: now(),
        resources,
        totals: {
          rows: sum((r) => r.rows),
          rowsLastMinute: sum((r) => r.rowsLastMinute),
          consumerLag: sum((r) => r.consumerLag),
          deadLetters: sum((r) => (r.producerDeadLetters ?? 0) + (r.sinkDeadLetters ?? 0)),
          maxFreshnessSeconds: fresh.some((f) => f === null) ? null : Math.max(...(fresh as number[])),
        },
        errors,
      };
    },

    runs: (minutes) => timeSeries(RUNS_BY_STATUS, 'status', 'runs', minutes, RUN_STATUS_ORDER),

    async audit(minutes) {
      const series = await timeSeries(AUDIT_PER_MINUTE, 'log_type', 'events', minutes);
      const top = await rows<{ email: string; events: string }>(
        `SELECT email, sum(events) AS events FROM ${qualifiedName(db, AUDIT_PER_MINUTE)} ` +
          `WHERE minute >= toDateTime(${series.labels[0]!}) GROUP BY email ORDER BY events DESC, email LIMIT 10`,
      );
      return { ...series, topUsers: top.map((r) => ({ email: r.email, events: Number(r.events) })) };
    },

    async fields() {
      const generatedAt = now();
      const data = await rows<Record<keyof FieldRow, string | null>>(
        `SELECT field_name, class_name, fields, errors, error_rate, invalid, scored, mean_confidence ` +
          `FROM ${qualifiedName(db, FIELD_STATS)} ORDER BY field_name, class_name`,
      );
      const byClass: FieldRow[] = data.map((r) => ({
        field_name: r.field_name ?? '',
        class_name: r.class_name ?? '',
        fields: Number(r.fields),
        errors: Number(r.errors),
        error_rate: Number(r.error_rate),
        invalid: Number(r.invalid),
        scored: Number(r.scored),
        mean_confidence: num(r.mean_confidence),
      }));
      return {
        generatedAt,
        byField: fieldsByName(byClass),
        byClass,
        total: byClass.reduce((n, r) => n + r.fields, 0),
      };
    },

    close: () => clickhouse.close(),
  };
}

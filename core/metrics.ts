import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry for the process. Labels are resource names, endpoint templates and status codes only:
 * never URLs with ids, never anything a secret could appear in.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'instabase_stream_' });

const registers = [metricsRegistry];

export const metrics = {
  apiRequests: new Counter({
    name: 'instabase_api_requests_total',
    help: 'Instabase API requests by endpoint template and HTTP status (0 = network error)',
    labelNames: ['endpoint', 'status'] as const,
    registers,
  }),
  apiErrors: new Counter({
    name: 'instabase_api_errors_total',
    help: 'Instabase API calls that failed after retries, by endpoint template and error kind',
    labelNames: ['endpoint', 'kind'] as const,
    registers,
  }),
  recordsPublished: new Counter({
    name: 'instabase_records_published_total',
    help: 'Records acknowledged by Kafka, per resource',
    labelNames: ['resource'] as const,
    registers,
  }),
  deadLettered: new Counter({
    name: 'instabase_records_dead_lettered_total',
    help: 'Records sent to a dead-letter topic, per resource and stage (producer or sink)',
    labelNames: ['resource', 'stage'] as const,
    registers,
  }),
  producerUnits: new Gauge({
    name: 'instabase_producer_units',
    help: 'work units this producer runs now (1) or has handed over (0); in a producers group they move on failover',
    labelNames: ['unit'] as const,
    registers,
  }),
  lastSuccessfulPoll: new Gauge({
    name: 'instabase_last_successful_poll_timestamp_seconds',
    help: 'Unix time of the last poll of a resource that completed without error',
    labelNames: ['resource'] as const,
    registers,
  }),
  pollDuration: new Histogram({
    name: 'instabase_poll_duration_seconds',
    help: 'Duration of one complete poll of a resource',
    labelNames: ['resource'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  }),
  rowsInserted: new Counter({
    name: 'instabase_sink_rows_inserted_total',
    help: 'Rows inserted into ClickHouse, per table',
    labelNames: ['table'] as const,
    registers,
  }),
  sinkFlushDuration: new Histogram({
    name: 'instabase_sink_flush_duration_seconds',
    help: 'Duration of one sink flush (inserts of a batch into every table)',
    labelNames: ['resource'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  }),
  sinkFlushErrors: new Counter({
    name: 'instabase_sink_flush_errors_total',
    help: 'Failed flush attempts (each is retried; offsets are not committed until one succeeds)',
    labelNames: ['resource'] as const,
    registers,
  }),
  sinkLag: new Gauge({
    name: 'instabase_sink_consumer_lag',
    help: 'Messages not yet committed by the sink: high-water marks (as of the last fetch) minus committed offsets, per topic',
    labelNames: ['topic'] as const,
    registers,
  }),
};

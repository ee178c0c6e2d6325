// instabase-sim: the simulated Instabase AI Hub API, for demos, development and benchmarks.
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../core/log.ts';
import { DEFAULT_GROWTH, type EndlessMode } from './data.ts';
import { NO_FAULTS } from './faults.ts';
import { DEFAULT_SCALE, SCALE_KNOBS } from './modules.ts';
import { DEFAULT_SIM_PORT, DEFAULT_SIM_TOKEN, startSimulator } from './server.ts';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};
const prob = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a probability in [0, 1]`);
  return n;
};
const time = (v: string) => {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (Number.isNaN(n)) throw new InvalidArgumentError('--start-time takes epoch ms or an ISO date');
  return n;
};

const program = new Command('instabase-sim')
  .description(
    'A deterministic simulator of the Instabase AI Hub REST API, with scale, time and fault knobs.',
  )
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--port <n>', 'port (0 = any free port)', int('--port'), DEFAULT_SIM_PORT)
  .option('--token <token>', 'the Bearer token to accept', DEFAULT_SIM_TOKEN)
  .option('--context <id>', 'require this IB-Context header (403 otherwise)')
  .option('--seed <seed>', 'seed of all generated data and fault draws', '1')
  .option('--start-time <t>', 'virtual start time, epoch ms or ISO date (default 2026-01-10T00:00:00Z)', time)
  // scale
  .option('--batches <n>', 'batches at start', int('--batches'), DEFAULT_SCALE.batches)
  .option(
    '--batch-spacing-ms <n>',
    'ms between the creations of the batches at start (the older a batch, the more files it has gained)',
    int('--batch-spacing-ms'),
    DEFAULT_SCALE.batchSpacingMs,
  )
  .option('--runs <n>', 'runs at start (spread over the last 20 hours)', int('--runs'), DEFAULT_SCALE.runs)
  .option(
    '--files-per-run <n>',
    'result files per completed run',
    int('--files-per-run'),
    DEFAULT_SCALE.filesPerRun,
  )
  .option(
    '--docs-per-file <n>',
    'documents per result file',
    int('--docs-per-file'),
    DEFAULT_SCALE.docsPerFile,
  )
  .option('--fields-per-doc <n>', 'fields per document', int('--fields-per-doc'), DEFAULT_SCALE.fieldsPerDoc)
  .option(
    '--audit-logs <n>',
    'audit entries at start (generated on demand)',
    int('--audit-logs'),
    DEFAULT_SCALE.auditLogs,
  )
  .option('--conversations <n>', 'conversations', int('--conversations'), DEFAULT_SCALE.conversations)
  .option(
    '--docs-per-conversation <n>',
    'average documents per conversation',
    int('--docs-per-conversation'),
    DEFAULT_SCALE.docsPerConversation,
  )
  .option('--queries <n>', 'queries', int('--queries'), DEFAULT_SCALE.queries)
  .option('--files <n>', 'paths in the HEAD /v2/files tree', int('--files'), DEFAULT_SCALE.files);
// The resource modules' own scale knobs (./modules.ts), each a flag named for it: `fooBar` is --foo-bar.
const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
for (const knob of SCALE_KNOBS) {
  program.option(`${flag(knob.name)} <n>`, knob.description, int(flag(knob.name)), knob.default);
}
program
  .option(
    '--results-page-size <n>',
    'files per run-results page',
    int('--results-page-size'),
    DEFAULT_SCALE.resultsPageSize,
  )
  .option(
    '--default-page-size <n>',
    'page size when a request gives none',
    int('--default-page-size'),
    DEFAULT_SCALE.defaultPageSize,
  )
  .option(
    '--max-page-size <n>',
    'cap on any page size (0 = none)',
    int('--max-page-size'),
    DEFAULT_SCALE.maxPageSize,
  )
  // time
  .option('--live', 'let the virtual clock follow real time (same as --tick-ms 1000)')
  .option('--tick-ms <n>', 'advance the virtual clock every n real ms', int('--tick-ms'), 0)
  .option('--speed <x>', 'virtual ms per real ms while ticking', num('--speed'), 1)
  .option(
    '--new-batches-per-min <n>',
    'batches created per virtual minute',
    num('--new-batches-per-min'),
    DEFAULT_GROWTH.batchesPerMin,
  )
  .option(
    '--new-runs-per-min <n>',
    'runs started per virtual minute',
    num('--new-runs-per-min'),
    DEFAULT_GROWTH.runsPerMin,
  )
  .option(
    '--new-audit-per-min <n>',
    'audit entries per virtual minute',
    num('--new-audit-per-min'),
    DEFAULT_GROWTH.auditPerMin,
  )
  // faults
  .option('--fault-429 <p>', 'probability of 429 with Retry-After', prob('--fault-429'), 0)
  .option(
    '--retry-after <s>',
    'Retry-After seconds (sent as seconds or HTTP-date)',
    int('--retry-after'),
    NO_FAULTS.retryAfterS,
  )
  .option('--fault-500 <p>', 'probability of 500', prob('--fault-500'), 0)
  .option('--fault-503 <p>', 'probability of 503', prob('--fault-503'), 0)
  .option('--fault-slow <p>', 'probability of a slow response', prob('--fault-slow'), 0)
  .option('--slow-ms <n>', 'delay of a slow response', int('--slow-ms'), NO_FAULTS.slowMs)
  .option('--fault-truncate <p>', 'probability of a 200 with cut-off JSON', prob('--fault-truncate'), 0)
  .option('--fault-malformed <p>', 'probability of a 200 that is not JSON', prob('--fault-malformed'), 0)
  .option('--fault-reset <p>', 'probability of a connection reset', prob('--fault-reset'), 0)
  .option(
    '--fault-max-consecutive <n>',
    'most faults in a row for one request',
    int('--fault-max-consecutive'),
    NO_FAULTS.maxConsecutive,
  )
  .option(
    '--bad-records <p>',
    'share of records that break the schema (fixed per record)',
    prob('--bad-records'),
    0,
  )
  .option(
    '--edge-values',
    'serve spec-valid edge cases: integers past 2^53, long literals, RFC 3339 variants, ids and lists left out',
  )
  .option('--endless <mode>', 'broken paging: off | repeat | empty | infinite', 'off');

program.parse();
const o = program.opts<Record<string, never>>() as unknown as Record<
  string,
  string | number | boolean | undefined
>;
const endless = String(o.endless) as EndlessMode;
if (!['off', 'repeat', 'empty', 'infinite'].includes(endless))
  program.error('--endless must be off, repeat, empty or infinite');

const log = createLogger('instabase-sim');
const n = (k: string) => o[k] as number;
const sim = await startSimulator({
  host: String(o.host),
  port: n('port'),
  token: String(o.token),
  context: o.context as string | undefined,
  seed: String(o.seed),
  startTime: o.startTime as number | undefined,
  scale: {
    batches: n('batches'),
    batchSpacingMs: n('batchSpacingMs'),
    runs: n('runs'),
    filesPerRun: n('filesPerRun'),
    docsPerFile: n('docsPerFile'),
    fieldsPerDoc: n('fieldsPerDoc'),
    auditLogs: n('auditLogs'),
    conversations: n('conversations'),
    docsPerConversation: n('docsPerConversation'),
    queries: n('queries'),
    files: n('files'),
    resultsPageSize: n('resultsPageSize'),
    defaultPageSize: n('defaultPageSize'),
    maxPageSize: n('maxPageSize'),
    ...Object.fromEntries(SCALE_KNOBS.map((knob) => [knob.name, n(knob.name)])),
  },
  growth: {
    batchesPerMin: n('newBatchesPerMin'),
    runsPerMin: n('newRunsPerMin'),
    auditPerMin: n('newAuditPerMin'),
  },
  faults: {
    rate429: n('fault429'),
    retryAfterS: n('retryAfter'),
    rate500: n('fault500'),
    rate503: n('fault503'),
    rateSlow: n('faultSlow'),
    slowMs: n('slowMs'),
    rateTruncate: n('faultTruncate'),
    rateMalformed: n('faultMalformed'),
    rateReset: n('faultReset'),
    maxConsecutive: n('faultMaxConsecutive'),
  },
  badRecords: n('badRecords'),
  edgeValues: Boolean(o.edgeValues),
  endless,
  tickMs: o.live && !n('tickMs') ? 1000 : n('tickMs'),
  speed: n('speed'),
  logger: log,
});
// The simulator's token guards nothing real, so it is printed for the user to copy.
log.info({ url: sim.url, state: `${sim.origin}/__sim/state` }, 'instabase simulator listening');
process.stdout.write(`INSTABASE_API_URL=${sim.url}\nINSTABASE_API_TOKEN=${sim.token}\n`);

const stop = () => {
  void sim.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

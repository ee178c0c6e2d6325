// The simulated account: every record is computed from (seed, index, virtual now), nothing is stored, so
// a million audit entries cost no memory and the ground truth is the same function the server renders.
import { hash, indexedUuid, pick, seedHash, u01, uuidIndex } from './rng.ts';

/** The scale knobs of SimData's own world. */
export interface DataScale {
  batches: number;
  /**
   * Time between the creations of the batches that exist at the start (newest first, back from the
   * start). A third of batches gain a file every 5-60 minutes, so this sets how many files the oldest
   * have: at 60 s, 20,000 batches reach back 14 days and the oldest have thousands.
   */
  batchSpacingMs: number;
  runs: number;
  filesPerRun: number;
  docsPerFile: number;
  fieldsPerDoc: number;
  auditLogs: number;
  conversations: number;
  /** Average documents per conversation (each has 0..2x this many). */
  docsPerConversation: number;
  queries: number;
  /** Paths in the file tree served by HEAD /v2/files/{path}. */
  files: number;
  /** Files per page of GET /v2/apps/runs/{id}/results. */
  resultsPageSize: number;
  /** Page size when a request gives none. */
  defaultPageSize: number;
  /** Largest page the server hands out whatever was asked; 0 = no cap. */
  maxPageSize: number;
}

/**
 * Every scale knob: SimData's own, and those resource modules declare (SimResource.scale), each module
 * adding its own to this interface (`declare module '../data.ts'`). ../modules.ts holds the defaults.
 */
export interface SimScale extends DataScale {}

/** New records per virtual minute once the clock moves. */
export interface SimGrowth {
  batchesPerMin: number;
  runsPerMin: number;
  auditPerMin: number;
}

export interface SimDataOptions {
  seed: string | number;
  /** Virtual epoch ms at which the simulation starts. */
  startTime: number;
  scale: SimScale;
  growth: SimGrowth;
  /** Probability that a record breaks its schema; which records do is fixed by the seed. */
  badRecords: number;
  /**
   * Serve, in a few records, every spec-valid value that is easy to mishandle: int64 extremes and
   * timestamps far outside years 1-9999, integers past 2^53, long integer literals for `type: number`,
   * huge and tiny floats, RFC 3339 variants, records without `id`, omitted optional lists (on empty
   * pages), non-numeric timestamp strings and odd strings.
   */
  edgeValues: boolean;
}

/** The defaults of SimData's own scale knobs (../modules.ts adds the modules' to make DEFAULT_SCALE). */
export const DEFAULT_DATA_SCALE: DataScale = {
  batches: 250,
  batchSpacingMs: 60_000,
  runs: 120,
  filesPerRun: 5,
  docsPerFile: 2,
  fieldsPerDoc: 3,
  auditLogs: 5000,
  conversations: 20,
  docsPerConversation: 3,
  queries: 15,
  files: 60,
  resultsPageSize: 2,
  defaultPageSize: 100,
  maxPageSize: 0,
};

export const DEFAULT_GROWTH: SimGrowth = { batchesPerMin: 2, runsPerMin: 1, auditPerMin: 60 };

/** 2026-01-10T00:00:00Z: a fixed default so runs without a clock knob are reproducible. */
export const DEFAULT_START_TIME = Date.UTC(2026, 0, 10);

const KIND = { run: 1, query: 2, conversation: 3 } as const;
const TAG = {
  batch: 10,
  run: 11,
  file: 12,
  conv: 13,
  doc: 14,
  meta: 15,
  query: 16,
  audit: 17,
  path: 18,
  bad: 99,
  badVariant: 98,
  removed: 97,
} as const;

/** What `SimData.remove` deletes a share of, each with what is below it. */
export type RemovableKind = 'batches' | 'conversations';

/**
 * The hash tags SimData's own records are drawn with. A resource module that draws data of its own takes
 * another (SimResource.hashTag); ../modules.ts refuses one taken here or by another module.
 */
export const DATA_HASH_TAGS: readonly number[] = Object.values(TAG);

export const RUN_STATUSES = [
  'CANCELLED',
  'COMPLETE',
  'FAILED',
  'PAUSED',
  'RUNNING',
  'STOPPED_AT_CHECKPOINT',
] as const;
export const AUDIT_LOG_TYPES = [
  'account_v2',
  'api_v2',
  'app_deployment_run_v2',
  'app_deployment_v2',
  'app_v2',
  'datasource_v2',
  'login_v2',
  'oauth2_v2',
  'org_v2',
  'org_secrets_v2',
  'perms_v2',
  'projects_v2',
  'review_v2',
  'workspace_v2',
] as const;
const AUDIT_USERS = 25;
const WORKSPACES = ['MyWorkspace', 'Finance', 'Claims', 'Onboarding', 'Legal'] as const;
const USERS = ['john.doe_acme.com', 'jane.roe_acme.com', 'li.wei_acme.com', 'ana.silva_acme.com'] as const;
const CLASSES = [
  'Wage And Tax Statement',
  'Driver License',
  'Invoice',
  'Bank Statement',
  'Passport',
] as const;
export const MAX_SAFE = 9007199254740991;
export const INT64_MAX = 9223372036854775807n;
/** 2^53 + 1: the first integer a double cannot hold, so it arrives as bigint from the lossless parser. */
const PAST_2_53 = 9007199254740993n;
/** A `type: number` written as a long integer literal. */
const LONG_LITERAL = 10000000000000000n;
/** RFC 3339 forms Date.parse or a strict ISO reader trip over: lowercase t/z, leap second, offsets. */
const EDGE_DATE_TIMES = [
  '2016-12-31T23:59:60Z',
  '2026-01-09t10:00:00.123456789z',
  '2026-01-09T15:30:00+05:30',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999-00:00',
];
/** How long a run that pauses stays PAUSED after its work is done (review, say), before it completes. */
const PAUSE_MS = 30 * 60_000;
const RUN_SPACING_MAX_MS = 60_000;
const AUDIT_SPACING_MS = 1000;
const QUERY_SPACING_MS = 60_000;
/** Strings that have broken JSON writers and readers before. */
export const ODD_STRING = 'edge "quoted" \\ back\\slash \u0000 nul \u2028 sep 😀 emoji עברית';
/** audit_logs timestamp_millis values that are strings, as documented, but not numbers. */
const EDGE_TIMESTAMPS = ['not-a-number', '', '1.7e12', '-9007199254740991', '99999999999999999999'];
/** Edge-value records: run 1 and one extra document of conversation 0 come without an `id`. */
const EDGE_RUN_WITHOUT_ID = 1;

export type Json = null | boolean | number | bigint | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface ExpectedList<K> {
  /** Records a clean walk yields (valid and invalid). */
  total: number;
  /** Keys (or positions where records have no key) of the records that pass the schema. */
  keys: K[];
  /** Keys (or positions) of the records served broken on purpose. */
  invalidKeys: K[];
  /**
   * Valid records served without an id (edge values: a run, a document): counted in `total`, in
   * neither list.
   */
  withoutId?: number;
}

export interface ResultsOptions {
  fileOffset: number;
  reviewResults: boolean;
  confidenceScores: boolean;
  validationResults: boolean;
  sourceInfo: boolean;
}

export interface AuditFilter {
  log_type?: string | null;
  email?: string | null;
  start_time?: string | null;
  end_time?: string | null;
}

export interface RunFilter {
  from_timestamp?: number;
  to_timestamp?: number;
  status?: readonly string[];
  run_id?: string;
  username?: string;
  sort_by?: 'start_timestamp' | 'status';
  order?: 'ASCENDING' | 'DESCENDING';
}

export interface FileEntry {
  path: string;
  exists: boolean;
  type: 'file' | 'folder' | null;
  valid: boolean;
}

/**
 * The simulated account. A resource module (./resources/*) may build its records on the public helpers
 * marked "resource API" below (the seed, isBad, badVariant, split, and a parent's lifecycle such as
 * batchCount, batchCreated, batchUpdates, batchUpdatePeriod, batchWorkspace, batchIndexOf), with a tag of
 * its own for hash/u01/pick, so its data lives in its module and not in this class.
 */
export class SimData {
  readonly seed: number;
  readonly opts: SimDataOptions;
  private readonly runSpacing: number;

  constructor(opts: SimDataOptions) {
    this.opts = opts;
    this.seed = seedHash(opts.seed);
    this.runSpacing = Math.max(
      1,
      Math.min(RUN_SPACING_MAX_MS, Math.floor((20 * 3600_000) / Math.max(1, opts.scale.runs))),
    );
  }

  /** The share of batches and of conversations deleted so far (`remove`); the seed says which. */
  private readonly removedShare: Record<RemovableKind, number> = { batches: 0, conversations: 0 };

  /**
   * Deletes a share (0-1) of the batches or the conversations, with what is below them (a batch's files,
   * a conversation's documents and their metadata): they leave the listings, their own routes answer
   * 404, and the ground truth drops them. Each has a fixed draw, so a larger share deletes more and a
   * smaller one brings none back.
   */
  remove(share: Partial<Record<RemovableKind, number>>): void {
    for (const kind of ['batches', 'conversations'] as const) {
      const v = share[kind];
      if (v === undefined) continue;
      if (!(v >= 0 && v <= 1)) throw new Error(`remove: the share of ${kind} must be between 0 and 1`);
      this.removedShare[kind] = Math.max(this.removedShare[kind], v);
    }
  }

  /** Whether batch or conversation i has been deleted (`remove`). */
  isRemoved(kind: RemovableKind, i: number): boolean {
    const share = this.removedShare[kind];
    return share > 0 && u01(this.seed, TAG.removed, kind === 'batches' ? TAG.batch : TAG.conv, i) < share;
  }

  /** Resource API: whether the record (tag, ...parts) is served broken; fixed by the seed. */
  isBad(tag: number, ...parts: number[]): boolean {
    return this.opts.badRecords > 0 && u01(this.seed, TAG.bad, tag, ...parts) < this.opts.badRecords;
  }

  /** Resource API: which of two ways a bad record (tag, ...parts) breaks (0 or 1). */
  badVariant(tag: number, ...parts: number[]): number {
    return hash(this.seed, TAG.badVariant, tag, ...parts) % 2;
  }

  private growthCount(initial: number, perMin: number, now: number): number {
    if (now <= this.opts.startTime || perMin <= 0) return initial;
    return initial + Math.floor(((now - this.opts.startTime) * perMin) / 60_000);
  }

  private growthTime(initial: number, perMin: number, i: number, spacingBefore: number): number {
    if (i < initial) return this.opts.startTime - (initial - i) * spacingBefore;
    return this.opts.startTime + Math.ceil(((i - initial + 1) * 60_000) / perMin);
  }

  // ---- batches -------------------------------------------------------------------------------------

  /** Resource API: batches listed at `now` (indexes 0..n-1). */
  batchCount(now: number): number {
    return this.growthCount(this.opts.scale.batches, this.opts.growth.batchesPerMin, now);
  }

  /** Resource API: when batch i was created (epoch ms). */
  batchCreated(i: number): number {
    return this.growthTime(
      this.opts.scale.batches,
      this.opts.growth.batchesPerMin,
      i,
      this.opts.scale.batchSpacingMs,
    );
  }

  /** Batch ids are 1, 2, 3…; with edge values, the third one is 2^53 + 1 (a bigint). */
  batchId(i: number): number | bigint {
    return this.opts.edgeValues && i === 2 ? PAST_2_53 : i + 1;
  }

  /**
   * Resource API: a third of the batches get a file added every period ms (0: never): updated_at_ms
   * moves with the clock, and the batch's files listing grows by one file per update.
   */
  batchUpdatePeriod(i: number): number {
    return u01(this.seed, TAG.batch, i, 1) < 0.33
      ? 300_000 + (hash(this.seed, TAG.batch, i, 2) % 3_300_000)
      : 0;
  }

  /** Resource API: how many times batch i has had a file added by `now`. */
  batchUpdates(i: number, now: number): number {
    const created = this.batchCreated(i);
    const period = this.batchUpdatePeriod(i);
    return period > 0 && now > created ? Math.floor((now - created) / period) : 0;
  }

  /** Resource API: the workspace batch i lives in (its files' paths are under it). */
  batchWorkspace(i: number): (typeof WORKSPACES)[number] {
    return pick(WORKSPACES, this.seed, TAG.batch, i, 3);
  }

  batch(i: number, now: number): Obj {
    const created = this.batchCreated(i);
    const updated = created + this.batchUpdates(i, now) * this.batchUpdatePeriod(i);
    const rec: Obj = {
      id: this.batchId(i),
      name: `batch-${i + 1}`,
      workspace: this.batchWorkspace(i),
      mount_point: 'Instabase Drive',
      repo_owner: 'acme_org',
      batch_owner: pick(USERS, this.seed, TAG.batch, i, 4),
      created_at_ms: created,
      updated_at_ms: updated,
      path_suffix: `batches/${i + 1}`,
    };
    if (this.opts.edgeValues && i === 0) {
      rec.created_at_ms = -MAX_SAFE;
      rec.updated_at_ms = MAX_SAFE;
      rec.name = ODD_STRING;
    }
    if (this.opts.edgeValues && i === 1) {
      rec.name = '';
      rec.path_suffix = '';
    }
    if (this.isBad(TAG.batch, i)) {
      if (this.badVariant(TAG.batch, i) === 0) delete rec.name;
      else rec.created_at_ms = 'yesterday';
    }
    return rec;
  }

  /** Indexes of the batches listed at `now`, in order; only a filtered listing needs a scan. */
  batchIndexes(
    now: number,
    filter: { workspace?: string; username?: string },
    from = 0,
    limit = Infinity,
  ): number[] {
    const n = this.batchCount(now);
    if (!filter.workspace && !filter.username && this.removedShare.batches === 0) {
      const end = Math.min(n, from + limit);
      return from >= end ? [] : Array.from({ length: end - from }, (_, k) => from + k);
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (this.isRemoved('batches', i)) continue;
      if (filter.workspace && this.batchWorkspace(i) !== filter.workspace) continue;
      if (filter.username && pick(USERS, this.seed, TAG.batch, i, 4) !== filter.username) continue;
      out.push(i);
    }
    return out.slice(from, from + limit);
  }

  /** Resource API: the batch index of an id as a path segment, if that batch is listed at `now`. */
  batchIndexOf(id: string, now: number): number | undefined {
    if (!/^\d+$/.test(id)) return undefined;
    const n = this.batchCount(now);
    if (this.opts.edgeValues && id === String(PAST_2_53)) return n > 2 ? 2 : undefined;
    const i = Number(id) - 1;
    return Number.isSafeInteger(i) &&
      i >= 0 &&
      i < n &&
      String(this.batchId(i)) === id &&
      !this.isRemoved('batches', i)
      ? i
      : undefined;
  }

  // ---- runs ----------------------------------------------------------------------------------------

  runCount(now: number): number {
    return this.growthCount(this.opts.scale.runs, this.opts.growth.runsPerMin, now);
  }

  runStartMs(j: number): number {
    return this.growthTime(this.opts.scale.runs, this.opts.growth.runsPerMin, j, this.runSpacing);
  }

  runId(j: number): string {
    return indexedUuid(this.seed, KIND.run, j);
  }

  runIndex(id: string, now: number): number | undefined {
    const j = uuidIndex(this.seed, KIND.run, id);
    return j !== undefined && j < this.runCount(now) ? j : undefined;
  }

  /**
   * The run's status at `now`: RUNNING for a while after it starts, then its outcome. One run in ten
   * pauses first (PAUSED for PAUSE_MS, as for a human review) and then completes.
   */
  runStatus(j: number, now: number): (typeof RUN_STATUSES)[number] {
    const finish = this.runStartMs(j) + this.runDuration(j);
    if (now < finish) return 'RUNNING';
    const u = u01(this.seed, TAG.run, j, 2);
    if (u < 0.1) return now < finish + PAUSE_MS ? 'PAUSED' : 'COMPLETE';
    return u < 0.85 ? 'COMPLETE' : u < 0.92 ? 'FAILED' : u < 0.97 ? 'CANCELLED' : 'STOPPED_AT_CHECKPOINT';
  }

  private runDuration(j: number): number {
    return 20_000 + (hash(this.seed, TAG.run, j, 1) % 600_000);
  }

  private ns(ms: number, j: number, part: number): bigint {
    return BigInt(ms) * 1_000_000n + BigInt(hash(this.seed, TAG.run, j, part) % 1_000_000);
  }

  /** The id the listing shows: none for the edge-value run served without one. */
  runKey(j: number): string | undefined {
    return this.opts.edgeValues && j === EDGE_RUN_WITHOUT_ID ? undefined : this.runId(j);
  }

  run(j: number, now: number): Obj {
    const start = this.runStartMs(j);
    const status = this.runStatus(j, now);
    const done = status !== 'RUNNING' && status !== 'PAUSED';
    const rec: Obj = {
      id: this.runId(j),
      status,
      start_timestamp: this.ns(start, j, 3),
      finish_timestamp: done ? this.ns(start + this.runDuration(j), j, 4) : null,
      msg: done ? `Completed ${status.toLowerCase()}` : null,
      batch_id: j % 3 === 0 ? (j % this.opts.scale.batches || 0) + 1 : null,
      input_dir: j % 3 === 0 ? null : `acme_org/MyWorkspace/fs/Instabase Drive/inputs/run-${j}`,
      app_id: `app-${hash(this.seed, TAG.run, j, 5) % 7}`,
      deployment_id: j % 2 === 0 ? `dep-${hash(this.seed, TAG.run, j, 6) % 5}` : null,
      tags: j % 4 === 0 ? null : [`team-${j % 3}`],
      username: pick(USERS, this.seed, TAG.run, j, 7),
    };
    if (this.opts.edgeValues && j === 0) {
      if (done) rec.finish_timestamp = INT64_MAX;
      rec.msg = ODD_STRING;
      rec.tags = [];
      rec.batch_id = PAST_2_53;
    }
    if (this.opts.edgeValues && j === EDGE_RUN_WITHOUT_ID) delete rec.id;
    if (this.isBad(TAG.run, j)) {
      if (this.badVariant(TAG.run, j) === 0) rec.status = 'DONE';
      else rec.start_timestamp = String(rec.start_timestamp);
    }
    return rec;
  }

  runIndexes(now: number, f: RunFilter): number[] {
    const nowS = Math.floor(now / 1000);
    const from = f.from_timestamp ?? nowS - 86_400;
    const to = f.to_timestamp ?? nowS;
    const n = this.runCount(now);
    // Start times grow with the index: binary search the window, then filter inside it.
    const lo = lowerBound(n, (j) => Math.floor(this.runStartMs(j) / 1000) >= from);
    const hi = lowerBound(n, (j) => Math.floor(this.runStartMs(j) / 1000) > to);
    let out: number[] = [];
    for (let j = lo; j < hi; j++) {
      if (f.status?.length && !f.status.includes(this.runStatus(j, now))) continue;
      if (f.run_id && this.runId(j) !== f.run_id) continue;
      if (f.username && pick(USERS, this.seed, TAG.run, j, 7) !== f.username) continue;
      out.push(j);
    }
    if (f.sort_by === 'status') {
      out = out
        .map((j) => ({ j, s: this.runStatus(j, now) }))
        .sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : a.j - b.j))
        .map((x) => x.j);
    }
    if (f.order === 'DESCENDING') out.reverse();
    return out;
  }

  /** Files in the results of run j: all of them once COMPLETE, none before. */
  resultFileCount(j: number, now: number): number {
    return this.runStatus(j, now) === 'COMPLETE' ? this.opts.scale.filesPerRun : 0;
  }

  resultFile(j: number, f: number, o: ResultsOptions): Obj {
    const { docsPerFile, fieldsPerDoc } = this.opts.scale;
    const edge = this.opts.edgeValues && j === 0 && f === 0;
    const documents: Obj[] = [];
    for (let d = 0; d < docsPerFile; d++) {
      const fields: Obj[] = [];
      for (let k = 0; k < fieldsPerDoc; k++) {
        const field: Obj = {
          field_name: `field_${k}`,
          value: k === 0 && edge ? ODD_STRING : `value ${j}-${f}-${d}-${k}`,
          type: 'TEXT',
        };
        if (hash(this.seed, TAG.file, j, f, d, k) % 17 === 0) field.error_msg = 'Extraction failed';
        if (o.confidenceScores) {
          field.confidence = edge
            ? { model: 1.7976931348623157e308, ocr: 5e-324 }
            : { model: round4(u01(this.seed, TAG.file, j, f, d, k, 1)), ocr: null };
        }
        if (o.sourceInfo) {
          field.source_coordinates = [
            {
              top_x: 36.0,
              top_y: 181.5,
              bottom_x: 84.25,
              bottom_y: edge ? 3.4028234663852886e38 : 212.0,
              page_number: 0,
            },
          ];
        }
        if (o.reviewResults) {
          field.edit_history =
            k === 0
              ? [
                  {
                    timestamp: '08/27/2025 00:58:39',
                    user_id: 'john.doe_acme.com',
                    modifications: [{ message: `Edited to "value ${j}"` }],
                  },
                ]
              : [];
        }
        if (o.validationResults) field.validations = { valid: k !== 1, alerts: [] };
        fields.push(field);
      }
      const doc: Obj = {
        class_name: d === 1 ? null : pick(CLASSES, this.seed, TAG.file, j, f, d),
        page_numbers: edge ? [d + 1, PAST_2_53] : [d + 1],
        fields,
      };
      if (o.reviewResults) {
        doc.review_completed = d === 0;
        doc.class_edit_history = [];
      }
      if (o.confidenceScores) {
        doc.classification_confidence = {
          model: edge && d === 0 ? LONG_LITERAL : round4(u01(this.seed, TAG.file, j, f, d, 9)),
        };
      }
      if (o.validationResults) doc.validations = { final_result_pass: true };
      if (o.sourceInfo) {
        doc.page_layouts = [
          { page_number: edge ? PAST_2_53 : 0, width: edge ? LONG_LITERAL : 1012.0, height: 639.5 },
        ];
        doc.post_processed_paths = [
          `acme_org/fs/Instabase Drive/app-runs/${this.runId(j)}/images/file-${f}.PNG`,
        ];
      }
      documents.push(doc);
    }
    const rec: Obj = {
      original_file_name: `file-${f}.pdf`,
      input_file_path: `acme_org/MyWorkspace/fs/Instabase Drive/app-runs/${this.runId(j)}/input/file-${f}.pdf`,
      documents,
    };
    if (this.isBad(TAG.file, j, f)) {
      if (this.badVariant(TAG.file, j, f) === 0) rec.documents = { broken: true };
      else (documents[0] ?? (documents[0] = {})).page_layouts = [{ page_number: 0, height: 1 }];
    }
    return rec;
  }

  /** The body of GET /v2/apps/runs/{id}/results at file_offset (the files page included). */
  results(j: number, now: number, o: ResultsOptions, endless: EndlessMode): Obj {
    const run = this.run(j, now);
    const total = this.resultFileCount(j, now);
    const size = this.opts.scale.resultsPageSize;
    const from = endless === 'repeat' ? 0 : o.fileOffset;
    const files: Obj[] = [];
    const end = endless === 'infinite' ? from + size : Math.min(total, from + size);
    for (let f = from; f < end; f++) files.push(this.resultFile(j, f, o));
    const body: Obj = {
      id: this.runId(j),
      status: this.runStatus(j, now),
      message: typeof run.msg === 'string' ? run.msg : null,
      start_timestamp: this.ns(this.runStartMs(j), j, 3),
      finish_timestamp: run.finish_timestamp ?? null,
      files,
      keys: { custom: { source: 'simulator', run: String(j) } },
      case_info: {
        fields: total
          ? [
              {
                name: 'Employee_Address',
                value: `${j} STREET RD ANYWHERE, USA`,
                input_fields: [
                  {
                    record_index: this.opts.edgeValues && j === 0 ? PAST_2_53 : 0,
                    refined_phrase_name: 'field_0',
                  },
                ],
                chosen_field: j % 2 ? null : { record_index: 0, refined_phrase_name: 'field_0' },
                ...(o.validationResults ? { validations: { valid: true } } : {}),
              },
            ]
          : [],
      },
      has_more: endless === 'off' ? end < total : true,
    };
    // `files` is optional: with edge values an empty page leaves it out.
    if (this.opts.edgeValues && files.length === 0) delete body.files;
    if (run.batch_id !== null) body.batch_id = String(run.batch_id);
    if (o.reviewResults) body.review_completed = total > 0;
    return body;
  }

  // ---- queries -------------------------------------------------------------------------------------

  queryId(k: number): string {
    return indexedUuid(this.seed, KIND.query, k);
  }

  queryIndex(id: string): number | undefined {
    const k = uuidIndex(this.seed, KIND.query, id);
    return k !== undefined && k < this.opts.scale.queries ? k : undefined;
  }

  queryState(k: number, now: number): 'RUNNING' | 'COMPLETE' | 'FAILED' {
    const created = this.opts.startTime - (this.opts.scale.queries - k) * QUERY_SPACING_MS;
    const finish = created + 5_000 + (hash(this.seed, TAG.query, k, 1) % 600_000);
    if (now < finish) return 'RUNNING';
    return u01(this.seed, TAG.query, k, 2) < 0.9 ? 'COMPLETE' : 'FAILED';
  }

  query(k: number, now: number): Obj {
    const status = this.queryState(k, now);
    const edge = this.opts.edgeValues && k < 3;
    const rec: Obj = { query_id: this.queryId(k), status };
    if (status === 'COMPLETE') {
      rec.results = [
        {
          response: `Answer ${k}: the email was sent on Monday.`,
          source_documents: [
            {
              name: `doc-${k}.eml`,
              pages: [
                {
                  page_number: edge ? PAST_2_53 : 1,
                  bboxes: [{ top_x: edge ? LONG_LITERAL : 10, top_y: 20.5, bottom_x: 110, bottom_y: 40 }],
                },
              ],
            },
          ],
        },
      ];
    }
    if (status === 'FAILED') rec.error = 'Query execution failed: model timeout';
    if (this.isBad(TAG.query, k)) {
      if (this.badVariant(TAG.query, k) === 0) delete rec.status;
      else rec.results = [{ source_documents: [] }];
    }
    return rec;
  }

  // ---- conversations -------------------------------------------------------------------------------

  conversationId(c: number): string {
    return indexedUuid(this.seed, KIND.conversation, c);
  }

  conversationIndex(id: string): number | undefined {
    const c = uuidIndex(this.seed, KIND.conversation, id);
    return c !== undefined && c < this.opts.scale.conversations && !this.isRemoved('conversations', c)
      ? c
      : undefined;
  }

  /** Resource API: the conversations listed, in order. */
  conversationIndexes(): number[] {
    return Array.from({ length: this.opts.scale.conversations }, (_, c) => c).filter(
      (c) => !this.isRemoved('conversations', c),
    );
  }

  /** The same in the list and in the detail (the API has one description per conversation). */
  private conversationDescription(c: number): string {
    return c % 3 === 0 ? '' : `Questions about case ${c}`;
  }

  conversationSummary(c: number): Obj {
    const rec: Obj = {
      id: this.conversationId(c),
      name: `conversation-${c}`,
      description: this.conversationDescription(c),
    };
    if (this.opts.edgeValues && c === 0) rec.name = ODD_STRING;
    if (this.isBad(TAG.conv, c)) {
      if (this.badVariant(TAG.conv, c) === 0) delete rec.name;
      else rec.description = 42;
    }
    return rec;
  }

  /**
   * Document ids of conversation c. The edge knob adds, to conversation 0, one whose id is 2^53-1, one
   * whose id is 2^53+1 (a bigint) and one without an id (undefined here).
   */
  documentIds(c: number): Array<number | bigint | undefined> {
    const n = hash(this.seed, TAG.conv, c, 1) % (2 * this.opts.scale.docsPerConversation + 1);
    const ids: Array<number | bigint | undefined> = Array.from({ length: n }, (_, d) => c * 1000 + d + 1);
    if (this.opts.edgeValues && c === 0) ids.push(MAX_SAFE, PAST_2_53, undefined);
    return ids;
  }

  /** Position of a document in its conversation, from the id as a path segment or a value. */
  private docPosition(c: number, docId: number | bigint | string): number | undefined {
    const i = this.documentIds(c).findIndex((id) => id !== undefined && String(id) === String(docId));
    return i < 0 ? undefined : i;
  }

  conversation(c: number): Obj {
    const summary = this.conversationSummary(c);
    const documents = this.documentIds(c).map((id, d) => this.documentDetails(c, d, id));
    const rec: Obj = {
      id: this.conversationId(c),
      name: typeof summary.name === 'string' ? summary.name : `conversation-${c}`,
      description: this.conversationDescription(c),
      state: pick(['COMPLETE', 'COMPLETE', 'RUNNING', 'FAILED'], this.seed, TAG.conv, c, 2),
      documents,
    };
    // `documents` is optional: with edge values a conversation without any leaves it out.
    if (this.opts.edgeValues && documents.length === 0) delete rec.documents;
    return rec;
  }

  documentDetails(c: number, d: number, id: number | bigint | undefined): Obj {
    const uploaded = new Date(this.opts.startTime - (c * 50 + d) * 60_000).toISOString();
    const rec: Obj = {
      ...(id === undefined ? {} : { id }),
      name: `document-${c}-${d}.pdf`,
      state: pick(['PROCESSED', 'PROCESSED', 'PROCESSING', 'FAILED'], this.seed, TAG.doc, c, d),
      uploadTimestamp:
        this.opts.edgeValues && c === 0 ? EDGE_DATE_TIMES[d % EDGE_DATE_TIMES.length]! : uploaded,
    };
    if (this.isBad(TAG.doc, c, d)) {
      if (this.badVariant(TAG.doc, c, d) === 0) rec.name = 7;
      else rec.uploadTimestamp = 'not a date';
    }
    return rec;
  }

  documentMetadata(c: number, docId: number | bigint | string): Obj | undefined {
    const d = this.docPosition(c, docId);
    if (d === undefined) return undefined;
    const rec: Obj = {
      id: this.documentIds(c)[d]!,
      ibdoc_path: `acme_org/conversations/${this.conversationId(c)}/docs/document-${c}-${d}.ibdoc`,
      name: `document-${c}-${d}.pdf`,
      metadata: [
        {
          page_count: 1 + (hash(this.seed, TAG.meta, c, d) % 9),
          language: 'en',
          mime_type: 'application/pdf',
        },
      ],
    };
    if (this.isBad(TAG.meta, c, d)) {
      if (this.badVariant(TAG.meta, c, d) === 0) rec.name = null;
      else rec.metadata = { page_count: 1 };
    }
    return rec;
  }

  // ---- audit logs ----------------------------------------------------------------------------------

  auditCount(now: number): number {
    return this.growthCount(this.opts.scale.auditLogs, this.opts.growth.auditPerMin, now);
  }

  auditTime(i: number): number {
    return this.growthTime(this.opts.scale.auditLogs, this.opts.growth.auditPerMin, i, AUDIT_SPACING_MS);
  }

  auditEntry(i: number): Obj {
    const t = this.auditTime(i);
    const logType = AUDIT_LOG_TYPES[i % AUDIT_LOG_TYPES.length]!;
    const h = hash(this.seed, TAG.audit, i);
    const rec: Obj = {
      timestamp_millis: String(t),
      email: auditEmail(i),
      user_ip: `10.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}`,
      log_type: logType,
      action: pick(['CREATE', 'READ', 'UPDATE', 'DELETE', 'LOGIN'], this.seed, TAG.audit, i, 1),
      details: { request_id: `req-${i}`, status_code: 200 },
    };
    if (this.opts.edgeValues && i < EDGE_TIMESTAMPS.length) rec.timestamp_millis = EDGE_TIMESTAMPS[i]!;
    if (this.isBad(TAG.audit, i)) {
      if (this.badVariant(TAG.audit, i) === 0) rec.timestamp_millis = t;
      else rec.email = [auditEmail(i)];
    }
    return rec;
  }

  /**
   * The entries matching a filter, as arithmetic instead of a scan: log_type and email are periodic in
   * the index and time grows with it, so counting and the k-th match are O(log n) even for millions.
   */
  auditSelection(now: number, f: AuditFilter): AuditSelection {
    const n = this.auditCount(now);
    const start = f.start_time != null && f.start_time !== '' ? Number(f.start_time) : -Infinity;
    const end = f.end_time != null && f.end_time !== '' ? Number(f.end_time) : Infinity;
    const lo = Number.isNaN(start) ? n : lowerBound(n, (i) => this.auditTime(i) >= start);
    const hi = Number.isNaN(end) ? 0 : lowerBound(n, (i) => this.auditTime(i) > end);
    const types = AUDIT_LOG_TYPES.length;
    const period = types * AUDIT_USERS;
    const residues: number[] = [];
    const typeIdx = f.log_type ? AUDIT_LOG_TYPES.indexOf(f.log_type as (typeof AUDIT_LOG_TYPES)[number]) : -1;
    const userIdx = f.email ? auditUserIndex(f.email) : -1;
    if ((f.log_type && typeIdx < 0) || (f.email && userIdx < 0))
      return new AuditSelection(period, [], lo, Math.max(lo, hi));
    for (let r = 0; r < period; r++) {
      if (typeIdx >= 0 && r % types !== typeIdx) continue;
      if (userIdx >= 0 && Math.floor(r / types) % AUDIT_USERS !== userIdx) continue;
      residues.push(r);
    }
    return new AuditSelection(period, residues, lo, Math.max(lo, hi));
  }

  // ---- files (HEAD) --------------------------------------------------------------------------------

  filePath(i: number): string {
    const folder = Math.floor(i / 10);
    const base = `acme_org/${WORKSPACES[folder % WORKSPACES.length]}/fs/Instabase Drive/folder-${folder}`;
    return i % 10 === 0 ? base : `${base}/doc ${i}.pdf`;
  }

  fileEntry(i: number): FileEntry {
    const path = this.filePath(i);
    const exists = i % 10 === 0 || u01(this.seed, TAG.path, i) >= 0.15;
    return {
      path,
      exists,
      type: exists ? (i % 10 === 0 ? 'folder' : 'file') : null,
      valid: !exists || !this.isBad(TAG.path, i),
    };
  }

  fileIndex(path: string): number | undefined {
    const m = /\/folder-(\d+)(?:\/doc (\d+)\.pdf)?$/.exec(path);
    if (!m) return undefined;
    const i = m[2] === undefined ? Number(m[1]) * 10 : Number(m[2]);
    return i < this.opts.scale.files && this.filePath(i) === path ? i : undefined;
  }

  /** HEAD headers for file-tree entry i, or undefined when the path is absent (404). */
  fileHeaders(i: number): Record<string, string> | undefined {
    const e = this.fileEntry(i);
    if (!e.exists) return undefined;
    let headers: Record<string, string>;
    if (e.type === 'folder') headers = { 'content-type': 'application/json' };
    else {
      const size =
        this.opts.edgeValues && i === 1
          ? '9223372036854775807'
          : String(1 + (hash(this.seed, TAG.path, i, 1) % 5_000_000));
      headers = {
        'content-type': 'application/octet-stream',
        'content-length': size,
        'last-modified':
          this.opts.edgeValues && (i === 2 || i === 3)
            ? // A leap second, and lowercase letters with an offset: RFC 3339 date-times all the same.
              i === 2
              ? '2016-12-31T23:59:60Z'
              : '2026-01-09t10:00:00.5+01:00'
            : new Date(this.opts.startTime - (hash(this.seed, TAG.path, i, 2) % 86_400) * 1000).toISOString(),
      };
    }
    if (!e.valid) {
      if (this.badVariant(TAG.path, i) === 0 || e.type === 'folder') headers['content-type'] = 'text/html';
      else headers['last-modified'] = 'yesterday-ish';
    }
    return headers;
  }

  // ---- ground truth --------------------------------------------------------------------------------

  expectedBatches(
    now: number,
    filter: { workspace?: string; username?: string } = {},
  ): ExpectedList<number | bigint> {
    return this.split(
      this.batchIndexes(now, filter),
      (i) => this.batchId(i),
      (i) => this.isBad(TAG.batch, i),
    );
  }

  expectedRuns(now: number, filter: RunFilter = {}): ExpectedList<string> {
    return this.split(
      this.runIndexes(now, filter),
      (j) => this.runKey(j),
      (j) => this.isBad(TAG.run, j),
    );
  }

  /** Keys are file positions in the results. */
  expectedRunResults(runId: string, now: number): ExpectedList<number> {
    const j = this.runIndex(runId, now);
    if (j === undefined) return { total: 0, keys: [], invalidKeys: [] };
    const files = Array.from({ length: this.resultFileCount(j, now) }, (_, f) => f);
    return this.split(
      files,
      (f) => f,
      (f) => this.isBad(TAG.file, j, f),
    );
  }

  expectedConversations(): ExpectedList<string> {
    return this.split(
      this.conversationIndexes(),
      (c) => this.conversationId(c),
      (c) => this.isBad(TAG.conv, c),
    );
  }

  expectedConversationDocuments(conversationId: string): ExpectedList<number | bigint> {
    const c = this.conversationIndex(conversationId);
    if (c === undefined) return { total: 0, keys: [], invalidKeys: [] };
    const ids = this.documentIds(c);
    return this.split(
      ids.map((id, d) => ({ id, d })),
      (x) => x.id,
      (x) => this.isBad(TAG.doc, c, x.d),
    );
  }

  expectedDocumentMetadataValid(conversationId: string, documentId: number | bigint): boolean | undefined {
    const c = this.conversationIndex(conversationId);
    if (c === undefined) return undefined;
    const d = this.docPosition(c, documentId);
    return d === undefined ? undefined : !this.isBad(TAG.meta, c, d);
  }

  queryIds(): string[] {
    return Array.from({ length: this.opts.scale.queries }, (_, k) => this.queryId(k));
  }

  expectedQuery(queryId: string, now: number): { status: string; valid: boolean } | undefined {
    const k = this.queryIndex(queryId);
    if (k === undefined) return undefined;
    return { status: this.queryState(k, now), valid: !this.isBad(TAG.query, k) };
  }

  expectedFiles(): FileEntry[] {
    return Array.from({ length: this.opts.scale.files }, (_, i) => this.fileEntry(i));
  }

  /** Keys are positions in the filtered listing (audit entries have no id). */
  expectedAuditLogs(now: number, filter: AuditFilter = {}): ExpectedList<number> & { invalidCount: number } {
    const sel = this.auditSelection(now, filter);
    const total = sel.count;
    const invalidKeys: number[] = [];
    for (let k = 0; k < total; k++) if (this.isBad(TAG.audit, sel.nth(k))) invalidKeys.push(k);
    // Listing a million valid positions would be useless; callers compare counts.
    return { total, keys: [], invalidKeys, invalidCount: invalidKeys.length };
  }

  /**
   * Resource API: the ground truth of a listing: each item's key (undefined: served without one) into
   * keys or invalidKeys by `bad`.
   */
  split<T, K>(items: T[], key: (t: T) => K | undefined, bad: (t: T) => boolean): ExpectedList<K> {
    const out: ExpectedList<K> = { total: items.length, keys: [], invalidKeys: [] };
    for (const t of items) {
      const k = key(t);
      if (k === undefined) out.withoutId = (out.withoutId ?? 0) + 1;
      else (bad(t) ? out.invalidKeys : out.keys).push(k);
    }
    return out;
  }
}

export type EndlessMode = 'off' | 'repeat' | 'empty' | 'infinite';

/** The indexes in [lo, hi) whose residue modulo `period` is in `residues`, with O(1) count and k-th. */
export class AuditSelection {
  private readonly before: number;
  readonly count: number;
  constructor(
    private readonly period: number,
    private readonly residues: readonly number[],
    lo: number,
    hi: number,
  ) {
    this.before = this.countBelow(lo);
    this.count = this.countBelow(hi) - this.before;
  }

  private countBelow(n: number): number {
    const full = Math.floor(n / this.period);
    const rest = n - full * this.period;
    let partial = 0;
    for (const r of this.residues) if (r < rest) partial++;
    return full * this.residues.length + partial;
  }

  /** The index of the k-th match (0-based). */
  nth(k: number): number {
    const m = this.before + k;
    const per = this.residues.length;
    return Math.floor(m / per) * this.period + this.residues[m % per]!;
  }
}

function auditEmail(i: number): string {
  return `user${Math.floor(i / AUDIT_LOG_TYPES.length) % AUDIT_USERS}@acme.com`;
}

function auditUserIndex(email: string): number {
  const m = /^user(\d+)@acme\.com$/.exec(email);
  const u = m ? Number(m[1]) : -1;
  return u >= 0 && u < AUDIT_USERS ? u : -1;
}

/** The first index in [0, n) where pred turns true (pred must be monotonic). */
export function lowerBound(n: number, pred: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

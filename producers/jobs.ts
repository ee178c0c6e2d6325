import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { ResourceName } from '../core/resources.ts';
import { forEachLimit, settleAll } from './concurrency-limit.ts';
import { walkAppendWindow } from './follow/append-window.ts';
import { publishTombstones, walkChanges, type EntityState } from './follow/changes.ts';
import { walkEntityWindow, walkReadyChildren } from './follow/entity-window.ts';
import { isRecord } from './follow/page-records.ts';
import { stateKey } from './follow/state-keys.ts';
import { pollTracked } from './follow/tracked.ts';
import type { ApiRecord, EngineContext } from './follow/types.ts';
import type { Page } from './instabase/paginators.ts';
import { InstabaseError } from './instabase/errors.ts';
import { TERMINAL_QUERY_STATUSES, TERMINAL_RUN_STATUSES } from './instabase/schemas.ts';
import { DECLARATIONS as D } from './resources.ts';
import type { ProducerRuntime } from './runtime.ts';
import type { PollJob } from './scheduler.ts';

/** Children poll with their root: the job of a root resource walks its whole tree. */
export const JOB_RESOURCES: Record<string, ResourceName[]> = {
  conversations: ['conversations', 'conversation_documents', 'conversation_document_metadata'],
  batches: ['batches', 'batch_files'],
  runs: ['runs', 'runs_results'],
  queries_status: ['queries_status'],
  files_metadata: ['files_metadata'],
  audit_logs: ['audit_logs'],
};

const endpointOf = (d: { spec: { method: string; path: string } }) => `${d.spec.method} ${d.spec.path}`;

/**
 * A conversation's documents and their metadata, with tombstones for metadata gone; returns the
 * conversation's `state`, which only its detail carries (undefined if the detail was not read).
 */
async function walkConversationTree(
  ctx: EngineContext,
  conversationId: string,
  concurrency: number,
): Promise<string | undefined> {
  const documents: ApiRecord[] = [];
  let state: string | undefined;
  await walkChanges(ctx, D.conversation_documents, {
    scope: conversationId,
    tombstones: true,
    params: { pathParams: { conversation_id: conversationId } },
    onRecord: (r) => void documents.push(r),
    onPage: (page) => {
      if (typeof page.meta?.state === 'string') state = page.meta.state;
    },
  });
  const seen = new Set<string>();
  let complete = true;
  // A document without an integer id (the spec requires none) has no metadata endpoint to ask.
  await settleAll(
    documents.filter((d) => typeof d.id === 'number' || typeof d.id === 'bigint'),
    concurrency,
    async (document) => {
      const walked = await walkChanges(ctx, D.conversation_document_metadata, {
        scope: conversationId,
        tombstones: true,
        deferTombstones: true,
        params: { pathParams: { conversation_id: conversationId, document_id: String(document.id) } },
      }).catch((err: unknown) => {
        complete = false;
        throw err;
      });
      for (const key of walked.seen) seen.add(key);
    },
  );
  // Metadata is only concluded gone once every document of the conversation was read.
  if (complete) {
    await publishTombstones(
      ctx,
      D.conversation_document_metadata,
      stateKey('conversation_document_metadata', conversationId, ''),
      seen,
      endpointOf(D.conversation_document_metadata),
    );
  }
  return state;
}

/**
 * The conversation list, each conversation's documents and their metadata. The list does not carry a
 * conversation's `state`; its detail (the documents endpoint) does, so each page of the list is walked
 * into first and its conversations are published with the state of their detail (or the last state
 * published, when the detail could not be read this time, so that a failure does not make a version).
 */
async function pollConversations(ctx: EngineContext, concurrency: number): Promise<void> {
  const states = new Map<string, string>();
  const errors: unknown[] = [];
  const { deleted } = await walkChanges(ctx, D.conversations, {
    tombstones: true,
    beforePage: async (page) => {
      // Conversations that break the contract are walked too (their valid documents are not lost), as
      // long as they have an id to put in the path.
      const ids = page.items
        .map((item) =>
          item.ok ? (item.record as ApiRecord).id : isRecord(item.raw) ? item.raw.id : undefined,
        )
        .filter((id): id is string => typeof id === 'string' && id !== '');
      await forEachLimit(ids, concurrency, async (id) => {
        try {
          const state = await walkConversationTree(ctx, id, concurrency);
          if (state !== undefined) states.set(id, state);
        } catch (err) {
          errors.push(err);
        }
      });
    },
    enrich: (conversation) => {
      const id = String(conversation.id);
      const previous = ctx.state.get<EntityState>(stateKey('conversations', undefined, id))?.o;
      const state = states.get(id) ?? (isRecord(previous) ? previous.state : undefined);
      return state === undefined ? conversation : { ...conversation, state };
    },
  });
  for (const key of deleted) {
    const id = key.slice(stateKey('conversations', undefined, '').length);
    await publishTombstones(
      ctx,
      D.conversation_documents,
      stateKey('conversation_documents', id, ''),
      new Set(),
      endpointOf(D.conversation_documents),
      true,
    );
    await publishTombstones(
      ctx,
      D.conversation_document_metadata,
      stateKey('conversation_document_metadata', id, ''),
      new Set(),
      endpointOf(D.conversation_document_metadata),
      true,
    );
  }
  // One broken branch did not stop its siblings; the poll still fails, so the next one asks again.
  if (errors.length) throw errors[0];
}

/** The integer ids of a page's records, valid or not: a batch that breaks the contract still has files. */
function integerIds(page: Page<unknown>): Array<number | bigint> {
  return page.items
    .map((item) => (item.ok ? (item.record as ApiRecord).id : isRecord(item.raw) ? item.raw.id : undefined))
    .filter(
      (id): id is number | bigint =>
        (typeof id === 'number' && Number.isInteger(id)) || typeof id === 'bigint',
    );
}

/**
 * The batch listing and, when `files` is given, each batch's files, walked before the page of batches
 * is published (as a conversation's documents are). Files gone from a batch get tombstones after two
 * complete walks without them; the files of a batch that is gone, at once.
 */
async function pollBatches(
  ctx: EngineContext,
  pageSize: number,
  files: { pageSize: number; concurrency: number } | undefined,
): Promise<void> {
  const errors: unknown[] = [];
  const { deleted } = await walkChanges(ctx, D.batches, {
    tombstones: true,
    params: { pageSize },
    beforePage: files
      ? (page) =>
          forEachLimit(integerIds(page), files.concurrency, async (id) => {
            try {
              await walkChanges(ctx, D.batch_files, {
                scope: String(id),
                tombstones: true,
                // Batches differ in size: the page budget follows the largest complete walk.
                budget: 'max',
                params: { pathParams: { batch_id: id }, pageSize: files.pageSize },
              });
            } catch (err) {
              errors.push(err);
            }
          })
      : undefined,
  });
  if (files) {
    for (const key of deleted) {
      const id = key.slice(stateKey('batches', undefined, '').length);
      await publishTombstones(
        ctx,
        D.batch_files,
        stateKey('batch_files', id, ''),
        new Set(),
        endpointOf(D.batch_files),
        true,
      );
    }
  }
  // One batch's files failing did not stop the others; the poll still fails, so the next one asks again.
  if (errors.length) throw errors[0];
}

/**
 * The paths files_metadata HEADs: the configured list, and with `filesFromBatchFiles` every full_path
 * batch_files has published and not tombstoned (its state, kept for tombstones, holds the fields).
 * Batch files name a path with a leading '/', which the path template already has.
 */
export function filesMetadataPaths(ctx: EngineContext): string[] {
  const p = ctx.config.producers;
  const paths = new Set(p.files);
  if (p.filesFromBatchFiles) {
    for (const [, entity] of ctx.state.entries<EntityState>(stateKey('batch_files', undefined, ''))) {
      const path = entity.f?.full_path;
      if (typeof path === 'string' && path.replace(/^\/+/, '') !== '') paths.add(path.replace(/^\/+/, ''));
    }
  }
  return [...paths];
}

export interface JobDeps {
  config: Config;
  runtime: ProducerRuntime;
  logger: Logger;
}

/** The poll jobs of the enabled resources, each following its resource the way its kind needs. */
export function buildJobs({ config, runtime, logger }: JobDeps): PollJob[] {
  const p = config.producers;
  const enabled = new Set(p.resources);
  const concurrency = p.concurrency;
  const intervalOf = (name: ResourceName) => p.intervalsMs[name] ?? p.defaultIntervalMs;
  const job = (name: ResourceName, run: (ctx: EngineContext) => Promise<void>): PollJob => ({
    name,
    intervalMs: intervalOf(name),
    run: async (signal) => {
      const ctx = runtime.context(signal, logger.child({ resource: name }));
      try {
        await run(ctx);
      } catch (err) {
        // A response that stayed malformed through every retry is bad input, and so is paging that would
        // not end (./follow/page-budget.ts): it is dead-lettered, and the poll fails so that its cursor
        // stays put and the next poll asks again.
        if (
          err instanceof InstabaseError &&
          (err.code === 'malformed_body' || err.code === 'schema' || err.code === 'paging')
        ) {
          await runtime.deadLetterFailure(name, err);
        }
        throw err;
      }
    },
  });

  const jobs: PollJob[] = [];
  if (enabled.has('conversations'))
    jobs.push(job('conversations', (ctx) => pollConversations(ctx, concurrency)));
  if (enabled.has('batches')) {
    const files = enabled.has('batch_files') ? { pageSize: p.batchFilesPageSize, concurrency } : undefined;
    jobs.push(job('batches', (ctx) => pollBatches(ctx, p.batchesPageSize, files)));
  }
  if (enabled.has('runs')) {
    const terminal: readonly string[] = TERMINAL_RUN_STATUSES;
    jobs.push(
      job('runs', async (ctx) => {
        await walkEntityWindow(ctx, D.runs, {
          bounds: (from, to) => ({
            from_timestamp: Math.floor(from / 1000),
            to_timestamp: Math.ceil(to / 1000),
            limit: p.runsPageSize,
          }),
          byKey: (id) => ({ run_id: id }),
          // A run without an id (the spec does not require one) cannot be re-read or asked for results.
          isOpen: (r) => r.id != null && !terminal.includes(String(r.status)),
          isReady: (r) => r.id != null && r.status === 'COMPLETE' && enabled.has('runs_results'),
          // Run timestamps are Unix nanoseconds, past 2^53: they arrive as bigint.
          timeMs: (r) =>
            r.start_timestamp == null
              ? ctx.now()
              : Number(BigInt(r.start_timestamp as bigint | number) / 1_000_000n),
          lookbackMs: p.runsLookbackMs,
          initialLookbackMs: p.initialLookbackMs,
        });
        await walkReadyChildren(ctx, D.runs, D.runs_results, (id) => ({ run_id: id }), concurrency);
      }),
    );
  }
  if (enabled.has('queries_status')) {
    const terminal: readonly string[] = TERMINAL_QUERY_STATUSES;
    jobs.push(
      job('queries_status', (ctx) =>
        pollTracked(
          ctx,
          D.queries_status,
          (id) => ({ query_id: id }),
          (r) => terminal.includes(String(r.status)),
          concurrency,
        ),
      ),
    );
  }
  if (enabled.has('files_metadata')) {
    jobs.push(
      job('files_metadata', (ctx) =>
        settleAll(filesMetadataPaths(ctx), concurrency, (path) =>
          walkChanges(ctx, D.files_metadata, { tombstones: false, params: { pathParams: { path } } }).then(
            () => undefined,
          ),
        ),
      ),
    );
  }
  if (enabled.has('audit_logs')) {
    jobs.push(
      job('audit_logs', (ctx) =>
        walkAppendWindow(ctx, D.audit_logs, {
          bounds: (start, end) => ({ body: { start_time: String(start), end_time: String(end) } }),
          settleMs: p.auditLogsSettleMs,
          initialLookbackMs: p.initialLookbackMs,
          pageSize: p.auditLogsPageSize,
        }),
      ),
    );
  }
  return jobs;
}

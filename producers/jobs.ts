import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { ResourceName } from '../core/resources.ts';
import { forEachLimit, settleAll } from './concurrency-limit.ts';
import { walkAppendWindow } from './follow/append-window.ts';
import { publishTombstones, walkChanges, type EntityState, type TombstoneHooks } from './follow/changes.ts';
import { walkEntityWindow, walkReadyChildren } from './follow/entity-window.ts';
import { isRecord } from './follow/page-records.ts';
import { cascadeKey, stateKey } from './follow/state-keys.ts';
import { shardName, type Shard } from './follow/shard.ts';
import { pollTracked } from './follow/tracked.ts';
import { WalkKeys } from './follow/walk-keys.ts';
import { CONCLUDED_PER_COMMIT, emptyStep, type ApiRecord, type EngineContext } from './follow/types.ts';
import { InstabaseError } from './instabase/errors.ts';
import type { Page, WalkParams } from './instabase/paginators.ts';
import { childPathParams } from './instabase/resource.ts';
import { childrenOf, ROOTS, type Declaration, type Follow } from './resources.ts';
import type { ProducerRuntime } from './runtime.ts';
import type { PollJob } from './scheduler.ts';

export { JOB_RESOURCES } from './resources.ts';

type PathParams = NonNullable<WalkParams['pathParams']>;
type Id = string | number | bigint;
type Of<K extends Follow['kind']> = Extract<Follow, { kind: K }>;

/** What every strategy of one poll needs: its context and the settings of the producers. */
/**
 * How many walks of children one poll runs at once: FAN_OUT_PER_SLOT per `producers.concurrency`. A
 * child walk keeps its place while its page's transaction commits, and a unit commits one transaction
 * at a time, so with `producers.concurrency` places a backfill was bound by commit round trips rather
 * than by requests: about five children's pages per transaction (#14). The walks' requests still wait
 * for the client's own limit (`instabase.concurrency`); the further places only let more pages share a
 * transaction (about 13 instead of 5 in the producers bench, and a fifth more records per second).
 */
const FAN_OUT_PER_SLOT = 4;

export function fanOut(knobs: Pick<Config['producers'], 'concurrency'>): number {
  return knobs.concurrency * FAN_OUT_PER_SLOT;
}

interface Poll {
  ctx: EngineContext;
  knobs: Config['producers'];
  enabled: ReadonlySet<ResourceName>;
  /** The share of the root's records this poll follows, with their children (./follow/shard.ts). */
  shard: Shard | undefined;
}

const endpointOf = (d: Declaration) => `${d.spec.method} ${d.spec.path}`;

/** A child is walked with its parent unless it is optional and not listed in producers.resources. */
const walked = (poll: Poll, child: Declaration): boolean => !child.optional || poll.enabled.has(child.name);

/** The children of `parent` followed by walking their changes, as this poll walks them. */
const changesChildren = (poll: Poll, parent: ResourceName): Declaration[] =>
  childrenOf(parent).filter((c) => c.follow.kind === 'changes' && walked(poll, c));

/** The page size a changes walk asks for, when its resource names a knob for it. */
const pageSizeOf = (poll: Poll, d: Declaration): { pageSize?: number } =>
  d.follow.kind === 'changes' && d.follow.pageSize ? { pageSize: poll.knobs[d.follow.pageSize] } : {};

/**
 * A child's path parameters: those its endpoint takes from the parent's own path ('^name') come from
 * there, the others are the parent record's id as the child's declaration resolves it.
 */
function pathParamsOf(child: Declaration, id: Id, parentPathParams: PathParams = {}): PathParams {
  const sources = Object.values(child.spec.parent?.pathParams ?? {}).filter((s) => !s.startsWith('^'));
  return childPathParams(child.spec, Object.fromEntries(sources.map((s) => [s, id])), parentPathParams);
}

/** The ids a child is walked for, from a list of parent records (valid or not), in their order. */
function childIds(child: Declaration, records: ApiRecord[]): Id[] {
  const id = child.parentId;
  if (!id) throw new Error(`${child.name}: a child walked per parent record needs parentId`);
  return records.map(id).filter((v): v is Id => v !== undefined);
}

/** The records of a page, valid or not: children of a record that breaks the contract are still due. */
const pageRecords = (page: Page<unknown>): ApiRecord[] =>
  page.items
    .map((item) => (item.ok ? (item.record as ApiRecord) : isRecord(item.raw) ? item.raw : undefined))
    .filter((r): r is ApiRecord => r !== undefined);

/**
 * A grandchild's walks under one record of the root: one per record of the child, tombstones concluded
 * only once every one of them was read (several walks share the root record's scope).
 */
async function walkScattered(
  poll: Poll,
  resource: Declaration,
  scope: string,
  parents: ApiRecord[],
  parentPathParams: PathParams,
): Promise<void> {
  const { ctx } = poll;
  // One set for the scope: the walks share it as they share the scope's tombstones.
  const seen = WalkKeys.of(ctx);
  try {
    let complete = true;
    await settleAll(childIds(resource, parents), fanOut(poll.knobs), async (id) => {
      await walkChanges(ctx, resource, {
        scope,
        tombstones: true,
        seen,
        params: { pathParams: pathParamsOf(resource, id, parentPathParams), ...pageSizeOf(poll, resource) },
      }).catch((err: unknown) => {
        complete = false;
        throw err;
      });
    });
    if (complete) {
      await publishTombstones(ctx, resource, stateKey(resource.name, scope, ''), seen, endpointOf(resource));
    }
  } finally {
    await seen.close();
  }
}

/**
 * One child of a root record, with its own children; `carry` sees its pages (a conversation's state is
 * in its detail's envelope). Its state sits below the root record's id.
 */
async function walkBranch(
  poll: Poll,
  child: Declaration,
  id: Id,
  carry: ((page: Page<unknown>) => void) | undefined,
): Promise<void> {
  const scope = String(id);
  const pathParams = pathParamsOf(child, id);
  const grandchildren = changesChildren(poll, child.name);
  const records: ApiRecord[] = [];
  const budget = child.follow.kind === 'changes' ? child.follow.budget : undefined;
  await walkChanges(poll.ctx, child, {
    scope,
    tombstones: true,
    ...(budget ? { budget } : {}),
    params: { pathParams, ...pageSizeOf(poll, child) },
    ...(grandchildren.length ? { onRecord: (r: ApiRecord) => void records.push(r) } : {}),
    ...(carry ? { onPage: carry } : {}),
  });
  for (const grandchild of grandchildren) await walkScattered(poll, grandchild, scope, records, pathParams);
}

/**
 * A listing walked whole (conversations, batches) and, before each of its pages is published, the
 * children of the page's records. One broken branch does not stop its siblings; the poll still fails,
 * so the next one asks again. The descendants of a record that is gone get their tombstones at once.
 */
async function followChanges(poll: Poll, root: Declaration, follow: Of<'changes'>): Promise<void> {
  const { ctx } = poll;
  const children = changesChildren(poll, root.name);
  const carried = new Map<string, string>();
  /** The page's records whose carrier branch failed: what it carries is not known this time. */
  const uncarried = new Set<string>();
  const carrier = follow.fromChild && children.find((c) => c.name === follow.fromChild?.resource);
  const errors: unknown[] = [];
  const branches = (page: Page<unknown>) =>
    children.flatMap((child) => childIds(child, pageRecords(page)).map((id) => ({ child, id })));
  const descendants = children.flatMap((c) => [c, ...changesChildren(poll, c.name)]);
  const cascade = descendants.length ? cascadeOf(ctx, root, descendants) : undefined;
  // What a poll killed half way through a cascade left is finished before anything else.
  await cascade?.resume();
  await walkChanges(ctx, root, {
    tombstones: true,
    ...(cascade ? { onTombstones: cascade.hooks } : {}),
    ...(poll.shard ? { shard: poll.shard } : {}),
    ...(follow.pageSize ? { params: pageSizeOf(poll, root) } : {}),
    beforePage: children.length
      ? (page) => {
          // What the previous page's branches carried was used when it was published.
          carried.clear();
          uncarried.clear();
          return forEachLimit(branches(page), fanOut(poll.knobs), async ({ child, id }) => {
            let value: string | undefined;
            const carry =
              child === carrier && follow.fromChild
                ? (page: Page<unknown>) => {
                    const v = page.meta?.[follow.fromChild!.field];
                    if (typeof v === 'string') value = v;
                  }
                : undefined;
            try {
              await walkBranch(poll, child, id, carry);
              if (value !== undefined) carried.set(String(id), value);
            } catch (err) {
              if (carry) uncarried.add(String(id));
              errors.push(err);
            }
          });
        }
      : undefined,
    enrich:
      carrier && follow.fromChild
        ? enrichFrom(ctx, root, carrier, follow.fromChild.field, carried, uncarried)
        : undefined,
  });
  if (errors.length) throw errors[0];
}

/**
 * The tombstones a root record's descendants get when it gets its own: their walks are per root record,
 * so once it is gone nothing else would ever conclude them. Its tombstone commits with a note
 * (`_cascade/<root>/<id>`) that theirs are due; after each part of the root's tombstones, the
 * descendants of that part are tombstoned and the notes go. A kill in between leaves the notes, and the
 * next poll resumes from them: a descendant already tombstoned is no longer in the state, so nothing is
 * published twice.
 */
function cascadeOf(
  ctx: EngineContext,
  root: Declaration,
  descendants: Declaration[],
): { hooks: TombstoneHooks; resume(): Promise<void> } {
  const idOf = (key: string) => key.slice(stateKey(root.name, undefined, '').length);
  const notes = cascadeKey(root.name, '');
  const tombstoneDescendants = async (ids: string[]) => {
    for (const id of ids) {
      for (const d of descendants) {
        await publishTombstones(ctx, d, stateKey(d.name, id, ''), new Set(), endpointOf(d), {
          confirmed: true,
        });
      }
    }
    await ctx.commit({
      ...emptyStep(),
      state: ids.map((id) => ({ key: cascadeKey(root.name, id), value: null })),
    });
  };
  return {
    hooks: {
      alongside: (key) => [{ key: cascadeKey(root.name, idOf(key)), value: { due: true } }],
      afterPart: (keys) => tombstoneDescendants(keys.map(idOf)),
    },
    async resume() {
      let ids: string[] = [];
      for await (const [key] of ctx.state.entries(notes)) {
        ids.push(key.slice(notes.length));
        if (ids.length >= CONCLUDED_PER_COMMIT) {
          await tombstoneDescendants(ids);
          ids = [];
        }
      }
      if (ids.length) await tombstoneDescendants(ids);
    },
  };
}

/**
 * A record completed with a field read from its child's pages, or, when the child was not read this
 * time, the field as last published, so that a failure does not make a version. A record whose child
 * failed and that was never published with the field is held back (undefined) until the child is read.
 */
function enrichFrom(
  ctx: EngineContext,
  root: Declaration,
  child: Declaration,
  field: string,
  carried: ReadonlyMap<string, string>,
  uncarried: ReadonlySet<string>,
): (record: ApiRecord) => ApiRecord | undefined {
  return (record) => {
    const id = child.parentId?.(record);
    if (id === undefined) return record;
    const previous = ctx.state.get<EntityState>(stateKey(root.name, undefined, String(id)))?.o;
    const value = carried.get(String(id)) ?? (isRecord(previous) ? previous[field] : undefined);
    if (value === undefined) return uncarried.has(String(id)) ? undefined : record;
    return { ...record, [field]: value };
  };
}

/** A time-windowed listing (runs), then the children of the records it marked ready (their results). */
async function followEntityWindow(poll: Poll, root: Declaration, follow: Of<'entity-window'>): Promise<void> {
  const { ctx, knobs } = poll;
  const children = childrenOf(root.name).filter((c) => c.follow.kind === 'ready-children');
  const childrenPolled = children.some((c) => walked(poll, c));
  await walkEntityWindow(ctx, root, {
    bounds: (from, to) => follow.bounds(from, to, knobs),
    byKey: follow.byKey,
    isOpen: follow.isOpen,
    isReady: (r) => follow.isReady(r) && childrenPolled,
    timeMs: (r) => follow.timeMs(r, ctx.now),
    lookbackMs: knobs[follow.lookbackMs],
    initialLookbackMs: knobs.initialLookbackMs,
    ...(poll.shard ? { shard: poll.shard } : {}),
  });
  // Records marked ready earlier are walked even when the child is no longer polled, as they always were.
  for (const child of children) {
    await walkReadyChildren(ctx, root, child, (key) => pathParamsOf(child, key), fanOut(knobs));
  }
}

/** The record is final once the endpoint's `terminal` field holds one of its values. */
function terminalOf(d: Declaration): (record: ApiRecord) => boolean {
  const terminal = d.spec.terminal;
  if (!terminal) throw new Error(`${d.name}: a tracked resource needs the endpoint's terminal declaration`);
  return (r) => terminal.values.includes(String(r[terminal.field]));
}

/** One poll of a root resource and its descendants, the way its declaration says it is followed. */
function follow(poll: Poll, root: Declaration): Promise<void> {
  const { ctx, knobs } = poll;
  const f = root.follow;
  switch (f.kind) {
    case 'changes':
      return followChanges(poll, root, f);
    case 'entity-window':
      return followEntityWindow(poll, root, f);
    case 'tracked':
      return pollTracked(ctx, root, (id) => ({ [f.pathParam]: id }), terminalOf(root), fanOut(knobs));
    case 'head-per-path':
      return settleAll(f.paths(ctx), fanOut(knobs), (path) =>
        walkChanges(ctx, root, {
          tombstones: false,
          params: { pathParams: { [f.pathParam]: path } },
        }).then(() => undefined),
      );
    case 'append-window':
      return walkAppendWindow(ctx, root, {
        bounds: f.bounds,
        settleMs: knobs[f.settleMs],
        initialLookbackMs: knobs.initialLookbackMs,
        pageSize: knobs[f.pageSize],
        // The state topic takes twice kafka.maxMessageBytes; half of what a record may be leaves the
        // tail ample room below that even on a state topic made smaller beforehand.
        tailStateBytes: Math.floor(ctx.config.kafka.maxMessageBytes / 2),
      });
    case 'ready-children':
      throw new Error(`${root.name} is walked by its parent's job, it has none of its own`);
  }
}

export interface JobDeps {
  config: Config;
  runtime: ProducerRuntime;
  logger: Logger;
  /** Follow only this share of each root's records (a sharded unit of a producers group has one root). */
  shard?: Shard;
}

/** One poll job per enabled root resource (./resources.ts), following its tree as declared. */
export function buildJobs({ config, runtime, logger, shard }: JobDeps): PollJob[] {
  const knobs = config.producers;
  const enabled = new Set(knobs.resources);
  return ROOTS.filter((root) => enabled.has(root.name)).map((root) => ({
    name: shardName(root.name, shard),
    intervalMs: knobs.intervalsMs[root.name] ?? knobs.defaultIntervalMs,
    run: async (signal) => {
      const ctx = runtime.context(signal, logger.child({ resource: root.name }));
      try {
        await follow({ ctx, knobs, enabled, shard }, root);
      } catch (err) {
        // A response that stayed malformed through every retry is bad input, and so is paging that would
        // not end (./follow/page-budget.ts): it is dead-lettered, and the poll fails so that its cursor
        // stays put and the next poll asks again.
        if (
          err instanceof InstabaseError &&
          (err.code === 'malformed_body' || err.code === 'schema' || err.code === 'paging')
        ) {
          await runtime.deadLetterFailure(root.name, err);
        }
        throw err;
      }
    },
  }));
}

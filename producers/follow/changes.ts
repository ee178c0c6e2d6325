import { contentHash } from '../content-hash.ts';
import { walk, type Page, type RecordItem, type WalkParams } from '../instabase/paginators.ts';
import type { StateChange } from '../state-store.ts';
import { pageBudget } from './page-budget.ts';
import { emitOf, invalidKey, isRecord, shapedRecords } from './page-records.ts';
import { ownedPage, type Shard } from './shard.ts';
import { stateKey } from './state-keys.ts';
import {
  CONCLUDED_PER_COMMIT,
  emptyStep,
  type ApiRecord,
  type EngineContext,
  type ResourceDeclaration,
} from './types.ts';
import { WalkKeys, type KeyLookup } from './walk-keys.ts';

/** What a changes walk keeps per entity: its hash and, for tombstones, the last state seen. */
export interface EntityState extends Record<string, unknown> {
  h: string;
  /** The record key, the fields and the object last published: a tombstone repeats them. */
  k?: string;
  f?: ApiRecord;
  o?: unknown;
  /** Set when one complete walk missed the entity; a second consecutive miss publishes the tombstone. */
  missed?: true;
}

export interface ChangesOptions {
  /** Prefix of this walk's state keys below the resource, e.g. a conversation id for its documents. */
  scope?: string;
  params?: WalkParams;
  /**
   * How the page budget learns from complete walks (./page-budget.ts): `max` when the walks of a
   * resource are per parent and differ in size (a batch's files).
   */
  budget?: 'last' | 'max';
  /**
   * After a complete walk, publish a `_deleted` record for every entity in scope that was not seen
   * (unless the caller passed `seen`: it concludes them itself). Either way the walk keeps, per entity,
   * what its tombstone will repeat.
   */
  tombstones: boolean;
  /** What the walk's tombstones bring along: a root record's, its descendants' (producers/jobs.ts). */
  onTombstones?: TombstoneHooks;
  /**
   * Called for every record of the walk, changed or not, valid or not, e.g. to fan out to children: a
   * record that breaks the contract is dead-lettered, but its valid children are still walked.
   */
  onRecord?: (record: ApiRecord, page: Page<unknown>, valid: boolean) => void;
  /** Called for every page, after onRecord (a page's envelope is in `page.meta`). */
  onPage?: (page: Page<unknown>) => void;
  /** Awaited before a page is published, e.g. to walk its records' children first. */
  beforePage?: (page: Page<unknown>) => Promise<void>;
  /**
   * Completes a valid record before it is shaped, hashed and published (a conversation gets the
   * `state` of its detail). What it adds is part of the published object. Undefined: the record cannot
   * be completed this time (its detail failed and nothing was published before); it is held back, not
   * published and its state untouched, but counts as seen, so the next walk publishes it whole.
   */
  enrich?: (record: ApiRecord) => ApiRecord | undefined;
  /** Only the records of this share of the listing (./shard.ts); every record when unset. */
  shard?: Shard;
  /**
   * The set the walk records its keys in, when several walks share one scope: the caller created it,
   * closes it, and concludes the scope's tombstones once every walk is done. Unset: the walk has a set
   * of its own and concludes its tombstones itself.
   */
  seen?: WalkKeys;
}

/** What a caller adds to tombstones: a root record's bring its descendants' (producers/jobs.ts). */
export interface TombstoneHooks {
  /** State committed in the same transaction as an entity's tombstone, given its state key. */
  alongside?: (key: string) => StateChange[];
  /**
   * Awaited after each part of the tombstones has committed, with the state keys it tombstoned, so that
   * what follows from a part is done before the next.
   */
  afterPart?: (keys: string[]) => Promise<void>;
}

/**
 * Walks an endpoint and publishes what is new or changed since the last walk, comparing content
 * hashes kept in the state. A walk that dies half way is simply walked again: unchanged records are
 * not re-emitted, so nothing repeats. Disappearance is only concluded after a complete walk.
 */
export async function walkChanges(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: ChangesOptions,
): Promise<void> {
  const seen = options.seen ?? WalkKeys.of(ctx);
  try {
    await walkWith(ctx, decl, options, seen);
  } finally {
    if (!options.seen) await seen.close();
  }
}

async function walkWith(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: ChangesOptions,
  seen: WalkKeys,
): Promise<void> {
  const prefix = stateKey(decl.name, options.scope, '');
  const budget = pageBudget(ctx, decl, options.budget);
  try {
    for await (const page of walk(ctx.client, decl.spec, {
      ...options.params,
      maxPages: budget.maxPages,
      signal: ctx.signal,
    })) {
      await publishChanges(
        ctx,
        decl,
        options,
        options.shard ? ownedPage(decl, page, options.shard) : page,
        seen,
        page.last ? budget.complete(page.pageIndex + 1) : [],
      );
      await seen.settle();
    }
  } catch (err) {
    await budget.failed(err);
    throw err;
  }
  if (options.tombstones && !options.seen) {
    await publishTombstones(
      ctx,
      decl,
      prefix,
      seen,
      `${decl.spec.method} ${decl.spec.path}`,
      options.onTombstones,
    );
  }
}

/** One page of a changes walk: what is new or changed is published, with `extraState`, in one commit. */
async function publishChanges(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: ChangesOptions,
  page: Page<unknown>,
  seen: WalkKeys,
  extraState: StateChange[],
): Promise<void> {
  const step = emptyStep();
  for (const item of page.items) {
    if (item.ok) options.onRecord?.(item.record as ApiRecord, page, true);
    else if (isRecord(item.raw)) {
      options.onRecord?.(item.raw, page, false);
      // An entity that is there but breaks the contract has not disappeared: no tombstone for it.
      const key = invalidKey(decl, item.raw, page);
      if (key !== undefined) seen.add(stateKey(decl.name, options.scope, key));
    }
  }
  options.onPage?.(page);
  await options.beforePage?.(page);
  const enrich = options.enrich;
  const complete: Page<unknown> = enrich
    ? {
        ...page,
        items: page.items.flatMap((item): RecordItem<unknown>[] => {
          if (!item.ok) return [item];
          const record = enrich(item.record as ApiRecord);
          if (record) return [{ ...item, record }];
          // Held back: a version without what enrich adds would be published once, then again whole.
          const key = invalidKey(decl, item.record as ApiRecord, page);
          if (key !== undefined) seen.add(stateKey(decl.name, options.scope, key));
          return [];
        }),
      }
    : page;
  for (const { shaped } of shapedRecords(decl, complete, ctx, step)) {
    const key = stateKey(decl.name, options.scope, shaped.key);
    if (seen.has(key)) continue;
    seen.add(key);
    const h = contentHash(shaped.object);
    const previous = ctx.state.get<EntityState>(key);
    if (previous?.h === h) {
      if (previous.missed) step.state.push({ key, value: { ...previous, missed: undefined } });
      continue;
    }
    step.emits.push(
      options.tombstones ? { ...emitOf(decl, shaped, page), stateKey: key } : emitOf(decl, shaped, page),
    );
    step.state.push({
      key,
      value: options.tombstones ? { h, k: shaped.key, f: shaped.fields, o: shaped.object } : { h },
    });
  }
  step.state.push(...extraState);
  if (step.emits.length || step.dead.length || step.state.length) await ctx.commit(step);
}

/**
 * `_deleted` records for the entities under `prefix` that are not in `keep`. Offset paging over a list
 * that changes while it is walked can skip an entity, so one miss only marks it; the tombstone, with
 * the last state seen, follows a second consecutive complete walk without it. `confirmed` skips that
 * wait when the absence is certain (the parent itself is gone). Returns how many were tombstoned.
 */
export async function publishTombstones(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  prefix: string,
  keep: KeyLookup,
  endpoint: string,
  { confirmed = false, alongside, afterPart }: TombstoneHooks & { confirmed?: boolean } = {},
): Promise<number> {
  let deleted = 0;
  let step = emptyStep();
  /** The entities this part concludes (marked or tombstoned), and those it tombstones. */
  let concluded = 0;
  let part: string[] = [];
  const commit = async () => {
    await ctx.commit(step);
    step = emptyStep();
    concluded = 0;
    const done = part;
    part = [];
    if (done.length) await afterPart?.(done);
  };
  for await (const [key, entity] of ctx.state.entries<EntityState>(prefix, (key) => !keep.has(key))) {
    if (!confirmed && !entity.missed) {
      step.state.push({ key, value: { ...entity, missed: true } });
    } else {
      if (entity.f && entity.k !== undefined) {
        step.emits.push({
          resource: decl.name,
          key: entity.k,
          fields: entity.f,
          object: entity.o,
          endpoint,
          deleted: true,
        });
      }
      step.state.push({ key, value: null });
      if (alongside) step.state.push(...alongside(key));
      deleted++;
      part.push(key);
    }
    if (++concluded >= CONCLUDED_PER_COMMIT) await commit();
  }
  if (concluded) await commit();
  return deleted;
}

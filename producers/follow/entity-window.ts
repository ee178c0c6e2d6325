import { forEachLimit } from '../concurrency-limit.ts';
import { contentHash } from '../content-hash.ts';
import { walk, type Page, type WalkParams } from '../instabase/paginators.ts';
import type { StateChange } from '../state-store.ts';
import { pageBudget } from './page-budget.ts';
import { emitOf, invalidKey, isRecord, shapedRecords } from './page-records.ts';
import { ownedPage, type Shard } from './shard.ts';
import { childCursorKey, stateKey, windowKey } from './state-keys.ts';
import {
  CONCLUDED_PER_COMMIT,
  emptyStep,
  type ApiRecord,
  type EngineContext,
  type ResourceDeclaration,
} from './types.ts';
import { WalkKeys } from './walk-keys.ts';

/** Per entity of a windowed listing: its hash, whether it can still change, and its time (ms). */
export interface TrackedEntity extends Record<string, unknown> {
  h: string;
  open: boolean;
  t: number;
  /** Marks entities whose children still have to be walked (a COMPLETE run's results). */
  ready?: boolean;
}

export interface EntityWindowOptions {
  /** How [from, to] (ms) travel in the listing request. */
  bounds(fromMs: number, toMs: number): WalkParams['query'];
  /** Query that lists one entity by key: open entities that left the window are re-read with it. */
  byKey(key: string): WalkParams['query'];
  isOpen(record: ApiRecord): boolean;
  isReady(record: ApiRecord): boolean;
  timeMs(record: ApiRecord): number;
  lookbackMs: number;
  initialLookbackMs: number;
  /** Only the entities of this share of the listing (./shard.ts); every entity when unset. */
  shard?: Shard;
}

/**
 * Entities listed by a time window that can still change after they appear (runs). Each poll lists
 * [watermark - lookback, now] so late updates are caught, re-reads entities that are not yet
 * terminal until they are, and publishes every change of content (so every status change) exactly
 * once: hashes in the state filter the overlap. Entities well behind the window are forgotten.
 */
export async function walkEntityWindow(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: EntityWindowOptions,
): Promise<void> {
  const seen = WalkKeys.of(ctx);
  try {
    await walkWindow(ctx, decl, options, seen);
  } finally {
    await seen.close();
  }
}

async function walkWindow(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: EntityWindowOptions,
  seen: WalkKeys,
): Promise<void> {
  const watermarkKey = windowKey(decl.name);
  const now = ctx.now();
  const wm = ctx.state.get<{ wm: number }>(watermarkKey)?.wm;
  const from = wm === undefined ? now - options.initialLookbackMs : wm - options.lookbackMs;
  const tracked = (record: ApiRecord, h: string): TrackedEntity => {
    let t: number;
    try {
      t = options.timeMs(record);
    } catch {
      // An invalid record's time may be unreadable; it is then kept for a lookback from now.
      t = now;
    }
    return {
      h,
      open: options.isOpen(record),
      t: Number.isFinite(t) ? t : now,
      ...(options.isReady(record) ? { ready: true } : {}),
    };
  };

  const publishPage = async (listed: Page<unknown>, extraState: StateChange[] = []) => {
    const page = options.shard ? ownedPage(decl, listed, options.shard) : listed;
    const step = emptyStep();
    for (const { record, shaped } of shapedRecords(decl, page, ctx, step)) {
      const key = stateKey(decl.name, undefined, shaped.key);
      seen.add(key);
      const h = contentHash(shaped.object);
      if (ctx.state.get<TrackedEntity>(key)?.h === h) continue;
      step.emits.push(emitOf(decl, shaped, page));
      step.state.push({ key, value: tracked(record, h) });
    }
    // A parent that breaks the contract is dead-lettered above, but its valid children are still due:
    // it is tracked like a valid one when its key can be told (a COMPLETE run's results get walked).
    for (const bad of page.invalid) {
      if (!isRecord(bad.raw)) continue;
      const k = invalidKey(decl, bad.raw, page);
      if (k === undefined) continue;
      const key = stateKey(decl.name, undefined, k);
      seen.add(key);
      const h = contentHash(bad.raw);
      if (ctx.state.get<TrackedEntity>(key)?.h === h) continue;
      step.state.push({ key, value: tracked(bad.raw, h) });
    }
    step.state.push(...extraState);
    if (step.emits.length || step.dead.length || step.state.length) await ctx.commit(step);
    await seen.settle();
  };

  const budget = pageBudget(ctx, decl);
  try {
    for await (const page of walk(ctx.client, decl.spec, {
      query: options.bounds(from, now),
      maxPages: budget.maxPages,
      signal: ctx.signal,
    })) {
      await publishPage(page, page.last ? budget.complete(page.pageIndex + 1) : []);
    }
  } catch (err) {
    await budget.failed(err);
    throw err;
  }

  const prefix = stateKey(decl.name, undefined, '');
  const unseen = ctx.state.entries<TrackedEntity>(prefix, (key) => !seen.has(key) && key !== watermarkKey);
  for await (const [key, entity] of unseen) {
    if (!entity.open) continue;
    // One entity's listing: the window's budget is more than it can legitimately need.
    for await (const page of walk(ctx.client, decl.spec, {
      query: options.byKey(key.slice(prefix.length)),
      maxPages: budget.maxPages,
      signal: ctx.signal,
    })) {
      await publishPage(page);
    }
  }

  // Forgotten in parts; the watermark moves with the last.
  const forgetBefore = from - options.lookbackMs;
  let prune: StateChange[] = [];
  for await (const [key, e] of ctx.state.entries<TrackedEntity>(prefix, (key) => key !== watermarkKey)) {
    if (e.open || e.ready || !(e.t < forgetBefore)) continue;
    prune.push({ key, value: null });
    if (prune.length >= CONCLUDED_PER_COMMIT) {
      await ctx.commit({ emits: [], dead: [], state: prune });
      prune = [];
    }
  }
  await ctx.commit({ emits: [], dead: [], state: [...prune, { key: watermarkKey, value: { wm: now } }] });
}

export interface ChildCursor extends Record<string, unknown> {
  /** The parent's hash the walk belongs to: a changed parent restarts it. */
  ph: string;
  next: number;
  done: boolean;
}

/**
 * Walks the children of every parent marked ready (a run that reached COMPLETE), once per parent
 * version, resuming at the checkpointed page after a restart. A parent whose children are all
 * published loses its ready mark in the same transaction as the last page.
 */
export async function walkReadyChildren(
  ctx: EngineContext,
  parent: ResourceDeclaration,
  child: ResourceDeclaration,
  pathParams: (parentKey: string) => NonNullable<WalkParams['pathParams']>,
  concurrency: number,
): Promise<void> {
  const prefix = stateKey(parent.name, undefined, '');
  const window = windowKey(parent.name);
  // Read from the state as slots free up, never held whole: a backfill can mark millions ready.
  async function* ready() {
    for await (const [key, entity] of ctx.state.entries<TrackedEntity>(prefix, (key) => key !== window))
      if (entity.ready) yield { parentKey: key.slice(prefix.length), stateKey: key, entity };
  }
  await forEachLimit(ready(), concurrency, async ({ parentKey, stateKey: parentStateKey, entity }) => {
    const cursorKey = childCursorKey(child.name, parentKey);
    const cursor = ctx.state.get<ChildCursor>(cursorKey);
    const startOffset = cursor && cursor.ph === entity.h && !cursor.done ? cursor.next : 0;
    // Children of different parents differ in size: the budget follows the largest complete walk.
    const budget = pageBudget(ctx, child, 'max');
    try {
      for await (const page of walk(ctx.client, child.spec, {
        pathParams: pathParams(parentKey),
        startOffset,
        maxPages: budget.maxPages,
        signal: ctx.signal,
      })) {
        const step = emptyStep();
        for (const { shaped } of shapedRecords(child, page, ctx, step))
          step.emits.push(emitOf(child, shaped, page));
        if (page.next) {
          step.state.push({ key: cursorKey, value: { ph: entity.h, next: page.next.offset, done: false } });
        } else {
          step.state.push({ key: cursorKey, value: null });
          step.state.push({ key: parentStateKey, value: { ...entity, ready: undefined } });
          step.state.push(...budget.complete(page.pageIndex + 1));
        }
        await ctx.commit(step);
      }
    } catch (err) {
      await budget.failed(err);
      throw err;
    }
  });
}

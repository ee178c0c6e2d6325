import { walk, type Page } from '../instabase/paginators.ts';
import { pageBudget } from './page-budget.ts';
import { emitOf, shapedRecords } from './page-records.ts';
import { tailKey, windowKey } from './state-keys.ts';
import { emptyStep, type EngineContext, type ResourceDeclaration, type Step } from './types.ts';

/** The cursor of an append-only resource: the watermark, and the window being walked, if any. */
export interface WindowState extends Record<string, unknown> {
  /** Everything up to and including this time (ms) has been published. */
  wm: number;
  /** The window in progress: its bounds and the offset of the next unpublished page. */
  s?: number;
  e?: number;
  next?: number;
}

/**
 * The entries published from the unsettled tail (see walkAppendWindow), by key, each with the end of the
 * tail walk that published it: once the watermark has reached that end, no walk reads the entry again
 * and the key is forgotten.
 */
export interface TailState extends Record<string, unknown> {
  keys: Record<string, number>;
}

export interface AppendWindowOptions {
  /** How the window's bounds travel in the request (epoch-ms strings in the body, for audit logs). */
  bounds(start: number, end: number): { body?: Record<string, unknown>; query?: Record<string, string> };
  /** Entries younger than this are left for the next window, so that late writes are not missed. */
  settleMs: number;
  initialLookbackMs: number;
  pageSize?: number;
  /**
   * Most bytes of JSON the tail's keys may take in the state (one record on the state topic, rewritten
   * with each page): a tail page that would take it past this is left to its settled window.
   */
  tailStateBytes: number;
}

/**
 * Append-only walking by time windows [s, e], both inclusive. Each page is published together with
 * the offset of the page after it, so a restart resumes inside the window without repeating a page;
 * the watermark moves to e only with the window's last page. A past window no longer changes (that
 * is what settleMs buys), so its offsets are stable across restarts.
 *
 * The settled windows alone would publish an entry settleMs after it happened at the earliest, so each
 * poll then also walks the unsettled tail (now - settleMs, now] whole (#14: an audit entry's freshness
 * was the poll interval + settleMs + 2 s). What the tail publishes is remembered by key in the state,
 * committed with it, and the settled window that reaches the same entries later skips them; an entry
 * written late is still found by that window. A tail walk is not resumed by offset (its offsets can
 * still move): a poll that dies in it walks the whole tail again and skips what it has published.
 */
export async function walkAppendWindow(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: AppendWindowOptions,
): Promise<void> {
  const now = ctx.now();
  const watermark = await walkSettled(ctx, decl, options, now);
  if (options.settleMs <= 0) return;
  // Entries between the watermark and the tail (after an outage) are left to the next settled window.
  const start = Math.max(watermark + 1, now - options.settleMs + 1);
  if (start > now) return;
  // The tail's page count says nothing of a settled window's: it does not teach the page budget.
  await walkPages(ctx, decl, options, start, now, 0, false, (step, _page, published) => {
    if (published.size === 0) return true;
    const keys = { ...ctx.state.get<TailState>(tailKey(decl.name))?.keys };
    for (const key of published) keys[key] = now;
    const value = { keys };
    // A tail busier than its state can remember (a state record over what the state topic takes
    // would fail every transaction) is read only as far as it can; the settled windows publish the
    // rest, later: freshness suffers, not the data.
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes > options.tailStateBytes) {
      ctx.logger.warn(
        { resource: decl.name, entries: Object.keys(keys).length, bytes, limit: options.tailStateBytes },
        'the unsettled tail holds more entries than its state may remember; the rest of it is ' +
          'published by its settled window, after settleMs (kafka.maxMessageBytes bounds the tail)',
      );
      return false;
    }
    step.state.push({ key: tailKey(decl.name), value });
    return true;
  });
}

/** The settled part, [watermark + 1, now - settleMs]; returns the watermark it leaves. */
async function walkSettled(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: AppendWindowOptions,
  now: number,
): Promise<number> {
  const key = windowKey(decl.name);
  const current = ctx.state.get<WindowState>(key) ?? { wm: now - options.initialLookbackMs - 1 };
  const start = current.s ?? current.wm + 1;
  const end = current.e ?? now - options.settleMs;
  if (end < start) return current.wm;
  const startOffset = current.s !== undefined ? (current.next ?? 0) : 0;
  await walkPages(ctx, decl, options, start, end, startOffset, true, (step, page) => {
    const next: WindowState = page.next
      ? { wm: current.wm, s: start, e: end, next: page.next.offset }
      : { wm: end };
    step.state.push({ key, value: next });
    if (!page.next) {
      // Tail entries up to the new watermark are behind every future walk.
      const tail = ctx.state.get<TailState>(tailKey(decl.name));
      if (tail) {
        const keys = Object.fromEntries(Object.entries(tail.keys).filter(([, until]) => until > end));
        step.state.push({ key: tailKey(decl.name), value: Object.keys(keys).length ? { keys } : null });
      }
    }
    return true;
  });
  return end;
}

/**
 * Walks [start, end] from `startOffset`, publishing each page's entries that the tail has not published,
 * with the state `finish` adds, in one commit per page.
 */
async function walkPages(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: AppendWindowOptions,
  start: number,
  end: number,
  startOffset: number,
  /** Whether a complete walk sets the page budget of the next (./page-budget.ts). */
  teachesBudget: boolean,
  /** Adds the page's state; false leaves the page unpublished and ends the walk. */
  finish: (step: Step, page: Page<unknown>, published: ReadonlySet<string>) => boolean,
): Promise<void> {
  const { body, query } = options.bounds(start, end);
  const budget = pageBudget(ctx, decl);
  try {
    for await (const page of walk(ctx.client, decl.spec, {
      ...(body ? { body } : {}),
      ...(query ? { query } : {}),
      startOffset,
      ...(options.pageSize ? { pageSize: options.pageSize } : {}),
      maxPages: budget.maxPages,
      signal: ctx.signal,
    })) {
      const step = emptyStep();
      const byTail = ctx.state.get<TailState>(tailKey(decl.name))?.keys ?? {};
      const published = new Set<string>();
      for (const { shaped } of shapedRecords(decl, page, ctx, step)) {
        if (Object.hasOwn(byTail, shaped.key)) continue;
        published.add(shaped.key);
        step.emits.push(emitOf(decl, shaped, page));
      }
      if (!finish(step, page, published)) return;
      if (page.last && teachesBudget) step.state.push(...budget.complete(page.pageIndex + 1));
      await ctx.commit(step);
    }
  } catch (err) {
    // Pages published so far stay checkpointed: the next poll resumes inside the window.
    await budget.failed(err);
    throw err;
  }
}

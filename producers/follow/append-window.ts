import { walk } from '../instabase/paginators.ts';
import { pageBudget } from './page-budget.ts';
import { emitOf, shapedRecords } from './page-records.ts';
import { windowKey } from './state-keys.ts';
import { emptyStep, type EngineContext, type ResourceDeclaration } from './types.ts';

/** The cursor of an append-only resource: the watermark, and the window being walked, if any. */
export interface WindowState extends Record<string, unknown> {
  /** Everything up to and including this time (ms) has been published. */
  wm: number;
  /** The window in progress: its bounds and the offset of the next unpublished page. */
  s?: number;
  e?: number;
  next?: number;
}

export interface AppendWindowOptions {
  /** How the window's bounds travel in the request (epoch-ms strings in the body, for audit logs). */
  bounds(start: number, end: number): { body?: Record<string, unknown>; query?: Record<string, string> };
  /** Entries younger than this are left for the next window, so that late writes are not missed. */
  settleMs: number;
  initialLookbackMs: number;
  pageSize?: number;
}

/**
 * Append-only walking by time windows [s, e], both inclusive. Each page is published together with
 * the offset of the page after it, so a restart resumes inside the window without repeating a page;
 * the watermark moves to e only with the window's last page. A past window no longer changes (that
 * is what settleMs buys), so its offsets are stable across restarts.
 */
export async function walkAppendWindow(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  options: AppendWindowOptions,
): Promise<void> {
  const key = windowKey(decl.name);
  const now = ctx.now();
  const current = ctx.state.get<WindowState>(key) ?? { wm: now - options.initialLookbackMs - 1 };
  const start = current.s ?? current.wm + 1;
  const end = current.e ?? now - options.settleMs;
  if (end < start) return;
  const startOffset = current.s !== undefined ? (current.next ?? 0) : 0;
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
      for (const { shaped } of shapedRecords(decl, page, ctx, step))
        step.emits.push(emitOf(decl, shaped, page));
      const next: WindowState = page.next
        ? { wm: current.wm, s: start, e: end, next: page.next.offset }
        : { wm: end };
      step.state.push({ key, value: next });
      if (page.last) step.state.push(...budget.complete(page.pageIndex + 1));
      await ctx.commit(step);
    }
  } catch (err) {
    // Pages published so far stay checkpointed: the next poll resumes inside the window.
    await budget.failed(err);
    throw err;
  }
}

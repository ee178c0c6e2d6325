import { InstabasePagingError } from '../instabase/errors.ts';
import type { StateChange } from '../state-store.ts';
import type { EngineContext, ResourceDeclaration } from './types.ts';

/**
 * The endless-paging guard. A server that keeps saying "there is more" (a broken cursor, an ignored
 * offset that shifts by a record) would otherwise be followed to the client's maxPagesPerWalk, publishing
 * every bogus page on the way. A walk may take FACTOR times the pages of the previous complete walk of its
 * resource (at least MIN_PAGES), never more than the resource's cap. Past that it stops with a page_cap
 * error, which the job logs and dead-letters. Real growth beyond the factor heals itself: the next walk
 * gets FACTOR times the budget that was hit, so a legitimately larger listing costs a few loud polls,
 * while a runaway one is held to the cap.
 */
export const PAGE_BUDGET_FACTOR = 4;
export const PAGE_BUDGET_MIN_PAGES = 10;

/** Per resource: pages of the last complete walk (`n`), and the budget a walk last ran into (`b`). */
export interface PageHistory extends Record<string, unknown> {
  n: number;
  b?: number;
}

// Outside every resource's own prefix, which the engines iterate as entities.
export const pageHistoryKey = (resource: string): string => `_pages/${resource}`;

export interface PageBudget {
  /** maxPages for walk(). */
  maxPages: number;
  /** The state change that records a complete walk of `pages` pages, or none when nothing changes. */
  complete(pages: number): StateChange[];
  /**
   * Call with a walk's error: when it is this budget running out, logs it loudly and commits the
   * escalation, so the next walk may go further. Rethrow the error afterwards in any case.
   */
  failed(err: unknown): Promise<void>;
}

/**
 * The page budget of one walk of `decl`. `mode: 'max'` keeps the largest walk seen instead of the last
 * one, for per-parent walks of different sizes (a run's results).
 */
export function pageBudget(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  mode: 'last' | 'max' = 'last',
): PageBudget {
  const key = pageHistoryKey(decl.name);
  const history = ctx.state.get<PageHistory>(key);
  const cap = Math.min(decl.maxPages ?? Infinity, ctx.client.options.maxPagesPerWalk);
  const basis = history ? Math.max(history.n, history.b ?? 0) : undefined;
  const maxPages =
    basis === undefined ? cap : Math.min(cap, Math.max(PAGE_BUDGET_MIN_PAGES, PAGE_BUDGET_FACTOR * basis));
  return {
    maxPages,
    complete(pages) {
      const n = mode === 'max' ? Math.max(pages, history?.n ?? 0) : pages;
      if (history && history.n === n && history.b === undefined) return [];
      return [{ key, value: { n } satisfies PageHistory }];
    },
    async failed(err) {
      if (!(err instanceof InstabasePagingError) || err.reason !== 'page_cap' || err.pages < maxPages) return;
      ctx.logger.error(
        {
          resource: decl.name,
          endpoint: err.endpoint,
          pages: maxPages,
          previousCompleteWalk: history?.n ?? null,
          cap,
          nextBudget: Math.min(cap, PAGE_BUDGET_FACTOR * maxPages),
        },
        maxPages >= cap
          ? 'walk stopped at the page cap of its resource: the server keeps paging'
          : `walk stopped after ${maxPages} pages, ${PAGE_BUDGET_FACTOR}x its last complete walk: the server keeps paging`,
      );
      if (maxPages < cap) {
        await ctx.commit({
          emits: [],
          dead: [],
          state: [{ key, value: { n: history?.n ?? 0, b: maxPages } satisfies PageHistory }],
        });
      }
    },
  };
}

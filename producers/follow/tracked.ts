import { forEachLimit } from '../concurrency-limit.ts';
import { contentHash } from '../content-hash.ts';
import { walk } from '../instabase/paginators.ts';
import { emitOf, shapedRecords } from './page-records.ts';
import { stateKey } from './state-keys.ts';
import { emptyStep, type ApiRecord, type EngineContext, type ResourceDeclaration } from './types.ts';

export interface TrackedId extends Record<string, unknown> {
  /** Hash of the last published observation; absent until the first one. */
  h?: string;
  done: boolean;
}

/** Starts tracking ids (from config or the queries topic); ids already known are left as they are. */
export function trackIds(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  ids: Iterable<string>,
): Array<{ key: string; value: TrackedId }> {
  const added: Array<{ key: string; value: TrackedId }> = [];
  for (const id of ids) {
    const key = stateKey(decl.name, undefined, id);
    if (!ctx.state.get(key)) added.push({ key, value: { done: false } });
  }
  return added;
}

/**
 * Polls each tracked id that is not terminal yet (queries_status), publishes every change of its
 * content, and stops polling it once it is terminal.
 */
export async function pollTracked(
  ctx: EngineContext,
  decl: ResourceDeclaration,
  pathParams: (id: string) => Record<string, string>,
  isTerminal: (record: ApiRecord) => boolean,
  concurrency: number,
): Promise<void> {
  const prefix = stateKey(decl.name, undefined, '');
  const open = await ctx.state.collect<TrackedId>(prefix, (_key, v) => !v.done);
  await forEachLimit(open, concurrency, async ([key, tracked]) => {
    const id = key.slice(prefix.length);
    for await (const page of walk(ctx.client, decl.spec, {
      pathParams: pathParams(id),
      signal: ctx.signal,
    })) {
      const step = emptyStep();
      for (const { record, shaped } of shapedRecords(decl, page, ctx, step)) {
        const h = contentHash(shaped.object);
        const done = isTerminal(record);
        if (h === tracked.h && done === tracked.done) continue;
        step.emits.push(emitOf(decl, shaped, page));
        step.state.push({ key, value: { h, done } });
      }
      if (step.emits.length || step.dead.length) await ctx.commit(step);
    }
  });
}

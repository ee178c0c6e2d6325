/**
 * A page's records on their way to a step: shaped into the Avro records they become, keyed, turned
 * into emits, and dead-lettered when they break the contract or cannot be keyed. Every follow
 * strategy (./changes.ts, ./entity-window.ts, ./append-window.ts, ./tracked.ts) publishes through it.
 */
import { stringifyJson } from '../instabase/json.ts';
import type { Page } from '../instabase/paginators.ts';
import type { ApiRecord, Emit, EngineContext, ResourceDeclaration, Shaped, Step } from './types.ts';

/**
 * Shapes a page record into the Avro records it becomes, with their keys. A record that cannot be
 * keyed or shaped (a missing id, say) is dead-lettered into `step`, never thrown past its page.
 */
function shapeRecord(
  decl: ResourceDeclaration,
  record: ApiRecord,
  page: Page<unknown>,
  index: number,
  step: Step,
  ctx: EngineContext,
): Shaped[] {
  try {
    return decl.shape
      ? decl.shape(record, page, index)
      : [{ key: decl.key(record, page), fields: record, object: record }];
  } catch (err) {
    step.dead.push({
      resource: decl.name,
      reason: 'unmappable-record',
      error: `record ${index} cannot be keyed or shaped: ${(err as Error).message}`,
      endpoint: page.endpoint,
      requestPath: page.requestPath,
      raw: stringifyJson(record),
      ibContext: ctx.config.instabase.context,
    });
    return [];
  }
}

function invalidToDeadLetters(
  decl: ResourceDeclaration,
  page: Page<unknown>,
  ctx: EngineContext,
  step: Step,
): void {
  for (const bad of page.invalid) {
    step.dead.push({
      resource: decl.name,
      reason: 'invalid-record',
      error: `record ${bad.index} does not match the API contract: ${bad.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      endpoint: page.endpoint,
      requestPath: page.requestPath,
      raw: bad.rawJson,
      ibContext: ctx.config.instabase.context,
      details: bad.issues,
    });
  }
}

/** The page's dead letters go into `step`; its valid records come out shaped, with the record they came from. */
export function* shapedRecords(
  decl: ResourceDeclaration,
  page: Page<unknown>,
  ctx: EngineContext,
  step: Step,
): Generator<{ record: ApiRecord; shaped: Shaped }> {
  invalidToDeadLetters(decl, page, ctx, step);
  for (const item of page.items) {
    if (!item.ok) continue;
    const record = item.record as ApiRecord;
    for (const shaped of shapeRecord(decl, record, page, item.index, step, ctx)) yield { record, shaped };
  }
}

export function emitOf(decl: ResourceDeclaration, shaped: Shaped, page: Page<unknown>): Emit {
  return {
    resource: decl.name,
    key: shaped.key,
    fields: shaped.fields,
    object: shaped.object,
    endpoint: page.endpoint,
    deleted: false,
  };
}

export const isRecord = (v: unknown): v is ApiRecord =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The key an invalid record would have, when it can be told (its id is there); undefined otherwise. */
export function invalidKey(
  decl: ResourceDeclaration,
  raw: ApiRecord,
  page: Page<unknown>,
): string | undefined {
  try {
    return decl.shape ? decl.shape(raw, page, 0)[0]?.key : decl.key(raw, page);
  } catch {
    return undefined;
  }
}

import { entityKey, valueSchema, type ResourceName } from '../../schemas/index.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import { keyStandInValue } from '../../sinks/schema/rows.ts';

/**
 * A record as the sink stores its key columns: a run or document without id (the spec requires none)
 * carries the stand-in derived from its content hash, as avsc would decode it (a string, or a bigint
 * for an Int64 key).
 */
export function withStoredKey<T extends Record<string, unknown>>(resource: ResourceName, record: T): T {
  const out: Record<string, unknown> = { ...record };
  for (const c of deriveLayout(resource, valueSchema(resource), { database: 'x' }).table.columns) {
    if (!c.standIn || out[c.name] !== null) continue;
    const v = keyStandInValue(c.standIn, String(out['_content_hash']));
    out[c.name] = c.standIn === 'content-hash' ? v : BigInt(v);
  }
  return out as T;
}

/** The entity key of a row or record as the sink stores it (see withStoredKey). */
export function storedKey(resource: ResourceName, record: Record<string, unknown>): string {
  return entityKey(resource, withStoredKey(resource, record));
}

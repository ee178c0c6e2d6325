import { createHash } from 'node:crypto';
import { stringifyJson } from './instabase/json.ts';

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Keys sorted, no whitespace, int64 exact: equal API objects always give equal text. */
export function canonicalJson(value: unknown): string {
  return stringifyJson(sortKeys(value));
}

/** Lowercase hex SHA-256 of the canonical JSON; what `_content_hash` holds and change detection compares. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/**
 * A share of a root resource's records (#16). In a producers group, a root with per-parent work
 * (a conversation's documents, a batch's files, a run's results) is split into `count` units; each
 * walks the whole parent listing but keeps only the parents whose key hashes to its `index`, with
 * their children. The shares are disjoint and cover every key, so the per-parent requests, the bulk of
 * such a walk, are spread over the group, while each unit's cursor state stays its own.
 */
import { createHash } from 'node:crypto';
import type { Page } from '../instabase/paginators.ts';
import { invalidKey, isRecord } from './page-records.ts';
import type { ApiRecord, ResourceDeclaration } from './types.ts';

export interface Shard {
  index: number;
  count: number;
}

/** The name of a share of a root (its unit's and its poll job's): `runs.1`; the root's own when unsharded. */
export const shardName = (root: string, shard: Shard | undefined): string =>
  shard ? `${root}.${shard.index}` : root;

/** The root a unit or job name stands for: `runs` for `runs.1` (root names hold no '.'). */
export const rootOfShare = (name: string): string => name.replace(/\.\d+$/, '');

/**
 * The share a key falls in: the same on every member and in every version (a hash of the key's bytes,
 * not a hash table's), or two members would both claim, or both drop, a parent.
 */
export function shardOf(key: string, count: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % count;
}

/**
 * The page as the shard sees it: the records it owns, valid or not. An invalid record whose key cannot
 * be told goes to share 0, so that it is dead-lettered once, not by every share.
 */
export function ownedPage<R>(decl: ResourceDeclaration, page: Page<R>, shard: Shard): Page<R> {
  const owns = (raw: unknown, valid: boolean): boolean => {
    let key: string | undefined;
    if (isRecord(raw)) {
      try {
        key = valid ? decl.key(raw, page) : invalidKey(decl, raw as ApiRecord, page);
      } catch {
        key = undefined;
      }
    }
    return (key === undefined ? 0 : shardOf(key, shard.count)) === shard.index;
  };
  const items = page.items.filter((item) => (item.ok ? owns(item.record, true) : owns(item.raw, false)));
  const kept = new Set(items.map((item) => item.index));
  return {
    ...page,
    items,
    records: items.flatMap((item) => (item.ok ? [item.record] : [])),
    invalid: page.invalid.filter((bad) => kept.has(bad.index)),
  };
}

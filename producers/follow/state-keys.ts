/**
 * Where the producers' cursor state lives in the state store (../state-store.ts), one key per fact:
 *
 * - `<resource>/<id>` and `<resource>/<scope>/<id>`: an entity's last published hash (and, where
 *   tombstones are due, what it last published); a scope is a parent's id (a conversation's documents).
 * - `<resource>/_window`: a time-windowed resource's watermark (./entity-window.ts, ./append-window.ts).
 * - `<resource>/_tail`: the keys an append-only resource published from its unsettled tail (./append-window.ts).
 * - `<child>/_cursor/<parent id>`: the page a parent's children walk resumes at (./entity-window.ts).
 * - `_pages/<resource>`: the page counts of the paging guard (./page-budget.ts).
 * - `_cascade/<root>/<id>`: a root record that got its tombstone while its descendants' are still due
 *   (../jobs.ts).
 */

/** The key of an entity's state, below its resource and scope. */
export const stateKey = (resource: string, scope: string | undefined, key: string): string =>
  `${resource}/${scope ? `${scope}/` : ''}${key}`;

/** The key of a time-windowed resource's watermark; it sits among the entity keys of its resource. */
export const windowKey = (resource: string): string => `${resource}/_window`;

/** The key of what an append-only resource published from the unsettled tail of its windows. */
export const tailKey = (resource: string): string => `${resource}/_tail`;

/** The key of the checkpoint of one parent's children walk. */
export const childCursorKey = (child: string, parentKey: string): string => `${child}/_cursor/${parentKey}`;

/** The note, committed with a root record's tombstone, that its descendants' tombstones are still due. */
export const cascadeKey = (root: string, id: string): string => `_cascade/${root}/${id}`;

/**
 * The resource a state key belongs to: its first segment, or the second for the producers' own
 * bookkeeping, whose keys begin with `_` (`_pages/<resource>`, `_cascade/<root>/<id>`).
 */
export function resourceOfStateKey(key: string): string {
  const [first = '', second = ''] = key.split('/', 2);
  return first.startsWith('_') ? second : first;
}

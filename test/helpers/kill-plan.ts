/**
 * The random part of a crash run, drawn from one printed seed so that a failing run can be repeated:
 * which target each SIGKILL hits, how long before it, and how long the target stays down.
 */

import { sequence } from '../../sim/rng.ts';

/** The simulator's mulberry32: the same seed gives the same plan. */
export const seededRandom = sequence;

export interface PlannedKill<T extends string> {
  target: T;
  /** Wait before the kill, from the previous target's restart. */
  afterMs: number;
  /** How long the target stays dead before it is started again. */
  downMs: number;
}

/**
 * `counts[target]` kills of each target, shuffled; waits and downtimes uniform in their ranges.
 */
export function killPlan<T extends string>(
  seed: number,
  counts: Readonly<Record<T, number>>,
  gapMs: [number, number],
  downMs: [number, number],
): Array<PlannedKill<T>> {
  const rand = seededRandom(seed);
  const between = ([lo, hi]: [number, number]) => Math.round(lo + rand() * (hi - lo));
  const order: T[] = [];
  for (const [target, n] of Object.entries(counts) as Array<[T, number]>)
    for (let i = 0; i < n; i++) order.push(target);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.map((target) => ({ target, afterMs: between(gapMs), downMs: between(downMs) }));
}

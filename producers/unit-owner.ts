import type { Logger } from '../core/log.ts';
import { firstLine } from '../core/secrets.ts';

/** A unit of work running here: all the owner needs of it is a way to stop it. */
export interface StoppableUnit {
  stop(): Promise<void>;
}

/**
 * Starts a unit by name. `fencedOut` is to be called when another member's registration of the unit's
 * transactional id fenced this run of it (it has then stopped publishing).
 */
export type StartUnit<U extends StoppableUnit> = (name: string, fencedOut: () => void) => Promise<U>;

export interface UnitOwnerOptions {
  logger: Logger;
  /** Cap of the backoff between attempts to start a unit (kafka.retryMaxMs). */
  retryMaxMs: number;
  /** The first backoff step (250 ms unless given). */
  retryMinMs?: number;
  /** Told whenever a unit starts (true) or stops (false) here: the metrics. */
  onChange?: (name: string, running: boolean) => void;
}

/**
 * The one owner of which units of work run on this member of a producers group. Rebalances say which
 * units the member should run (`assign`); the changes are applied one at a time, in order: units taken
 * away are stopped, units given are started. A unit that fails to start, or is fenced while it still
 * belongs here, is started again with capped backoff for as long as it stays assigned.
 *
 * Why a fenced unit is tried again rather than given up: registrations can cross. A member the unit was
 * just taken from may still have one in flight, which lands after the new owner's and fences it; giving
 * up would leave the unit unpolled until the next rebalance. The member that really lost the unit hears
 * so at its next heartbeat and stops trying; until then the two fence each other at most once per
 * backoff step, and each start reads the committed cursor state afresh, so nothing is published twice.
 */
export class UnitOwner<U extends StoppableUnit> {
  private wanted = new Set<string>();
  private readonly active = new Map<string, U>();
  /** Units fenced while running: restarted after a backoff, not at once. */
  private readonly fenced = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  private retryMs: number;
  private stopped = false;

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly start: StartUnit<U>,
    private readonly options: UnitOwnerOptions,
  ) {
    this.retryMs = options.retryMinMs ?? INITIAL_RETRY_MS;
  }

  /** The units running here now, by name. */
  running(): string[] {
    return [...this.active.keys()].sort();
  }

  units(): U[] {
    return [...this.active.values()];
  }

  /** The units a rebalance gave this member (those it cannot run are ignored). */
  assign(units: Iterable<string>): void {
    this.wanted = new Set([...units].filter((u) => this.names.has(u)));
    this.reconcile();
  }

  /** Resolves once every change asked for so far has been applied. */
  settled(): Promise<void> {
    return this.chain;
  }

  private reconcile(): void {
    this.chain = this.chain.then(() => this.apply());
  }

  private async apply(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = undefined;
    const { logger } = this.options;
    // Taken at once: a fence reported while this change is applied belongs to the next one (it queued
    // it), or a unit could be counted as fenced here without being stopped, and never start again.
    const fenced = new Set(this.fenced);
    this.fenced.clear();
    const leaving = [...this.active].filter(([name]) => !this.wanted.has(name) || fenced.has(name));
    await Promise.all(leaving.map(([name, unit]) => this.stopOne(name, unit)));
    const retryLater = [...fenced].filter((name) => this.wanted.has(name));
    const starting = [...this.wanted].filter((name) => !this.active.has(name) && !retryLater.includes(name));
    const failed: string[] = [];
    await Promise.all(
      starting.map(async (name) => {
        try {
          const unit = await this.start(name, () => this.fencedOut(name));
          if (this.stopped) {
            await unit.stop();
            return;
          }
          this.active.set(name, unit);
          this.options.onChange?.(name, true);
        } catch (err) {
          failed.push(name);
          logger.warn({ err, unit: name }, `work unit could not start; trying again: ${firstLine(err)}`);
        }
      }),
    );
    if ((failed.length > 0 || retryLater.length > 0) && !this.stopped) {
      this.retry = setTimeout(() => this.reconcile(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs);
    } else {
      this.retryMs = this.options.retryMinMs ?? INITIAL_RETRY_MS;
    }
  }

  private async stopOne(name: string, unit: U): Promise<void> {
    this.active.delete(name);
    await unit
      .stop()
      .catch((err: unknown) => this.options.logger.warn({ err, unit: name }, 'a unit stopped uncleanly'));
    this.options.onChange?.(name, false);
  }

  private fencedOut(name: string): void {
    this.options.logger.warn(
      { unit: name },
      'work unit fenced by another member; it is started again after a pause while the group gives it here',
    );
    this.fenced.add(name);
    this.reconcile();
  }

  /** Stops every unit and takes no more changes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.chain;
    await Promise.all([...this.active].map(([name, unit]) => this.stopOne(name, unit)));
  }
}

const INITIAL_RETRY_MS = 250;

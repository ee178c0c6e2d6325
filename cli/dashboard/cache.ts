/**
 * A few seconds of memory per key, so that any number of open dashboards costs ClickHouse and Kafka one
 * query per key per period: concurrent callers share the load in flight, and later callers get its
 * result (or its failure: a down ClickHouse is not asked again by every tab either) until ttlMs after
 * it settled. A slow load is never started twice at once.
 */
export class TtlCache {
  private readonly entries = new Map<string, { settledAt: number | null; value: Promise<unknown> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    const t = this.now();
    const hit = this.entries.get(key);
    if (hit && (hit.settledAt === null || t - hit.settledAt < this.ttlMs)) return hit.value as Promise<T>;
    for (const [k, e] of this.entries) {
      if (e.settledAt !== null && t - e.settledAt >= this.ttlMs) this.entries.delete(k);
    }
    const entry: { settledAt: number | null; value: Promise<T> } = {
      settledAt: null,
      value: new Promise<T>((resolve) => resolve(load())),
    };
    const settle = () => {
      entry.settledAt = this.now();
    };
    entry.value.then(settle, settle);
    this.entries.set(key, entry);
    return entry.value;
  }
}

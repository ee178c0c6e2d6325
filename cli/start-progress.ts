import { metrics } from '../core/metrics.ts';
import { RESOURCE_NAMES } from '../core/resources.ts';

const sum = (values: Array<{ value: number }>) => values.reduce((n, v) => n + v.value, 0);

/** The resource a sink table label (`db.table`, possibly quoted) belongs to, if it is a resource's main table. */
function resourceOfTable(label: string): string | undefined {
  const name = label.slice(label.lastIndexOf('.') + 1).replace(/[`"]/g, '');
  return (RESOURCE_NAMES as readonly string[]).includes(name) ? name : undefined;
}

/** One line from this process's own metrics: what was published, what landed, lag and dead letters. */
export async function progressLine(dashboardUrl: string): Promise<string> {
  const published = sum((await metrics.recordsPublished.get()).values);
  const landed = new Map<string, number>();
  for (const v of (await metrics.rowsInserted.get()).values) {
    const resource = resourceOfTable(String(v.labels.table ?? ''));
    if (resource) landed.set(resource, (landed.get(resource) ?? 0) + v.value);
  }
  const lag = sum((await metrics.sinkLag.get()).values);
  const deadLetters = sum((await metrics.deadLettered.get()).values);
  const rows = RESOURCE_NAMES.filter((r) => landed.has(r))
    .map((r) => `${r} ${landed.get(r)}`)
    .join(', ');
  return `published ${published} · rows ${rows || 'none yet'} · lag ${lag} · dead letters ${deadLetters} · ${dashboardUrl}`;
}

/**
 * For a person at a terminal: a progress summary every few seconds while `start` runs. Daemons and
 * non-TTY output get none (their logs and /metrics say the same).
 */
export function startProgress(dashboardUrl: string, everyMs = 10_000): () => void {
  if (process.stderr.isTTY !== true) return () => undefined;
  const timer = setInterval(() => {
    void progressLine(dashboardUrl).then((line) => process.stderr.write(`[progress] ${line}\n`));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Named points where a test can make the process die as a crash would: SIGKILL, with nothing of the
 * shutdown path run. `IBS_FAILPOINTS=sink.after-insert=3` kills the process the third time it passes
 * that point. Unset (always, outside tests), every point is a no-op. The kill-between-steps tests need
 * this because an outside SIGKILL cannot be timed to land between two network calls.
 */
const armed = parse(process.env.IBS_FAILPOINTS);
const passes = new Map<string, number>();

function parse(spec: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (spec ?? '').split(',')) {
    const m = /^\s*([\w.-]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

export function failpoint(name: string): void {
  const at = armed.get(name);
  if (at === undefined) return;
  const n = (passes.get(name) ?? 0) + 1;
  passes.set(name, n);
  if (n === at) process.kill(process.pid, 'SIGKILL');
}

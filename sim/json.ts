// The simulator's own JSON writer (kept apart from the client's parser so the contract tests do not check
// one piece of code against itself). bigint values are written as exact integer literals.
const MARK = '\u0000sim-bigint:';
const QUOTED = /"\\u0000sim-bigint:(-?\d+)"/g;

export function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? `${MARK}${v.toString()}` : v,
  );
  return text.includes('\\u0000sim-bigint:') ? text.replace(QUOTED, '$1') : text;
}

// Every secret the process learns is registered here, so that any text leaving the process
// (log lines, error messages, metric labels, status output) can be scrubbed of it.
const secrets = new Set<string>();

/** Secrets shorter than this are too likely to match ordinary text to be scrubbed safely. */
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

/** An Error whose message and stack no longer contain any registered secret. */
export function redactError(err: unknown): Error {
  if (err instanceof Error) {
    err.message = redact(err.message);
    if (err.stack) err.stack = redact(err.stack);
    return err;
  }
  return new Error(redact(String(err)));
}

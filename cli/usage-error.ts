/** A command line the user can fix: printed as one line, without a stack, and the process exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

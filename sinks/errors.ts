/** Stops the sink: an incompatible schema or a permanent insert error; nothing past it is committed. */
export class FatalSinkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FatalSinkError';
  }
}

/** A writer schema the target cannot turn into tables; records written with it are dead-lettered. */
export class UnmappableSchemaError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnmappableSchemaError';
  }
}

// One error class per failure class. Callers branch on the class (instanceof) or on `code`.

export abstract class TernError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Untrusted input (API object, config, CLI flag, CNI stdin) did not parse. `field` names where. */
export class ValidationError extends TernError {
  readonly code = 'invalid';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

/** A compare-and-swap write lost: the stored resourceVersion is not the one the writer read. */
export class ConflictError extends TernError {
  readonly code = 'conflict';
}

export class NotFoundError extends TernError {
  readonly code = 'not-found';
}

export class AlreadyExistsError extends TernError {
  readonly code = 'already-exists';
}

/** A backend could not be reached or failed in a way worth retrying later. */
export class UnavailableError extends TernError {
  readonly code = 'unavailable';
}

/** A pool (or every candidate pool) has no address left to give. */
export class ExhaustedError extends TernError {
  readonly code = 'exhausted';
}

// The one error a decoder may throw or report: it carries the NOTIFICATION to send and,
// per RFC 7606, what the receiver does about it.
import { TernError } from '../../model/errors.js';
import { ErrorCode } from './constants.js';

/**
 * - `session-reset`: send the NOTIFICATION and close the session (RFC 4271 behaviour).
 * - `treat-as-withdraw`: the UPDATE's NLRI are withdrawn; the session stays up (RFC 7606 §2).
 * - `attribute-discard`: the attribute is dropped and the rest of the UPDATE used (RFC 7606 §2).
 */
export type ErrorAction = 'session-reset' | 'treat-as-withdraw' | 'attribute-discard';

export class BgpError extends TernError {
  readonly code = 'bgp-protocol';
  constructor(
    readonly errorCode: number,
    readonly errorSubcode: number,
    message: string,
    readonly data: Buffer = Buffer.alloc(0),
    readonly action: ErrorAction = 'session-reset',
  ) {
    super(message);
  }

  /** The same error with another RFC 7606 action. */
  withAction(action: ErrorAction): BgpError {
    return new BgpError(this.errorCode, this.errorSubcode, this.message, this.data, action);
  }
}

export const errorCodeName = (code: number): string =>
  Object.entries(ErrorCode).find(([, v]) => v === code)?.[0] ?? `code ${code}`;

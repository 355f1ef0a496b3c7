/** The error a `TollgateClient` request rejects with: the gateway's error code, or `timeout` when no ack came. */
import type { ErrorCode } from '../errors/app-error.ts';

export type ClientErrorCode = ErrorCode | 'timeout';

export class TollgateRequestError extends Error {
  override readonly name = 'TollgateRequestError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** The client event that failed (`session:start`, …), or `connect`. */
    readonly event: string,
  ) {
    super(message);
  }
}

/** The error a `TollgateClient` request rejects with: the gateway's error code, or `timeout` when no ack came. */
import type { ErrorCode } from '../errors/app-error.ts';

/** The gateway's codes, `timeout` (no answer in time), and `too_many_connections` (a connect refused for it). */
export type ClientErrorCode = ErrorCode | 'timeout' | 'too_many_connections';

export class TollgateRequestError extends Error {
  override readonly name = 'TollgateRequestError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** The client event that failed (`session:start`, …), or `connect`. */
    readonly event: string,
    /** `overloaded`, `unavailable`: when the gateway said trying again is worth it (after the client's own retries). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

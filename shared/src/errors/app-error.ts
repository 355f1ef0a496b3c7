/**
 * The few named errors of Tollgate. Each has a stable wire `code`; handlers throw them and exactly one place
 * per transport (the socket ack wrapper, the HTTP error handler) turns them into an answer.
 */

export const ERROR_CODES = [
  'invalid_payload',
  'not_found',
  'forbidden',
  'invalid_state',
  'insufficient_credits',
  'clone_unavailable',
  'rate_limited',
  'unauthorized',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Context that explains the error; logged, and safe to send to the client. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
}

/** The one mapping from anything thrown to what the client is told: unknown errors become `internal`. */
export function toWireError(error: unknown): WireError {
  if (error instanceof AppError) return { code: error.code, message: error.message };
  return { code: 'internal', message: 'internal error' };
}

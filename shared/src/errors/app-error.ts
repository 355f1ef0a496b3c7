/**
 * The few named errors of Tollgate. Each has a stable wire `code`; handlers throw them and exactly one place
 * per transport (the socket ack wrapper, the HTTP error handler) turns them into an answer.
 */
import { dependencyFailure } from './dependency-failure.ts';

export const ERROR_CODES = [
  'invalid_payload',
  'not_found',
  'forbidden',
  'invalid_state',
  'insufficient_credits',
  'clone_unavailable',
  'rate_limited',
  'unauthorized',
  /** This gateway is past what it can serve: try again after `retryAfterMs` (another gateway may take it). */
  'overloaded',
  /**
   * Redis or Postgres did not answer (restarting, failing over), or the access tokens' signing keys could not be
   * fetched: nothing was done; try again after `retryAfterMs`.
   */
  'unavailable',
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
  /** `overloaded`, `unavailable`: when a retry is worth it. */
  retryAfterMs?: number;
  /** `invalid_state`: the session's status, and why it is in it (paused by the user, idle, disconnected; an end reason). */
  status?: string;
  reason?: string;
}

/** How long a client should wait before retrying after a dependency failed (a Redis or Postgres restart takes ~1 s). */
export const UNAVAILABLE_RETRY_MS = 1000;

/**
 * The one mapping from anything thrown to what the client is told: a dependency that did not answer becomes
 * `unavailable` (with a retry hint), any other unknown error `internal`.
 */
export function toWireError(error: unknown): WireError {
  if (error instanceof AppError) {
    const wire: WireError = { code: error.code, message: error.message };
    const { retryAfterMs, status, reason } = error.details ?? {};
    if (typeof retryAfterMs === 'number') wire.retryAfterMs = retryAfterMs;
    if (typeof status === 'string') wire.status = status;
    if (typeof reason === 'string' && reason !== '') wire.reason = reason;
    return wire;
  }
  const dependency = dependencyFailure(error);
  if (dependency) return { code: 'unavailable', message: `${dependency} is not answering; try again`, retryAfterMs: UNAVAILABLE_RETRY_MS };
  return { code: 'internal', message: 'internal error' };
}

/**
 * What kind of failure an error is, for the count of `internal` answers by cause (`/metrics`): the error's class and
 * code, never its message (which may hold user data).
 */
export function errorCause(error: unknown): string {
  if (error instanceof AppError) return error.code;
  const dependency = dependencyFailure(error);
  if (dependency) return `${dependency}_unavailable`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' || typeof code === 'number' ? `${error.name}:${code}` : error.name;
  }
  return typeof error;
}

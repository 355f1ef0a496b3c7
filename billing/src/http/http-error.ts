/**
 * The one mapping from anything a billing API handler throws to its HTTP answer `{ error: { code, message } }`:
 * AppError by its code, an idempotency conflict 409, fastify's own request errors (bad JSON, body too large, wrong
 * content type) `invalid_payload` with their status, and everything else `internal` (500, logged, not explained).
 */
import type { FastifyError } from 'fastify';
import { AppError, type ErrorCode } from '#shared/errors/app-error.ts';
import { IdempotencyConflictError } from '#billing/ledger/idempotency-conflict-error.ts';

export type ApiErrorCode = ErrorCode | 'idempotency_conflict';

export interface HttpError {
  status: number;
  body: { error: { code: ApiErrorCode; message: string } };
}

const STATUS: Record<ErrorCode, number> = {
  invalid_payload: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  invalid_state: 422,
  insufficient_credits: 422,
  clone_unavailable: 422,
  rate_limited: 429,
  internal: 500,
};

export function toHttpError(error: unknown): HttpError {
  const answer = (status: number, code: ApiErrorCode, message: string): HttpError => ({
    status,
    body: { error: { code, message } },
  });
  if (error instanceof AppError) return answer(STATUS[error.code], error.code, error.message);
  if (error instanceof IdempotencyConflictError) return answer(409, error.code, error.message);
  const fastifyError = error as Partial<FastifyError>;
  if (
    typeof fastifyError.code === 'string' &&
    fastifyError.code.startsWith('FST_') &&
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    return answer(fastifyError.statusCode, 'invalid_payload', fastifyError.message ?? 'invalid request');
  }
  return answer(500, 'internal', 'internal error');
}

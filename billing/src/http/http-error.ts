/**
 * The billing API's answers: the shared mapping (toHttpAnswer: AppError by its code, bad input 400, fastify's and
 * node's request errors with their status, anything else `internal`) and billing's own error, an idempotency
 * conflict, 409.
 */
import { toHttpAnswer, httpAnswer, type HttpAnswer } from '#shared/http/http-answer.ts';
import type { ErrorCode } from '#shared/errors/app-error.ts';
import { IdempotencyConflictError } from '#billing/ledger/idempotency-conflict-error.ts';

export type ApiErrorCode = ErrorCode | 'idempotency_conflict';

export type HttpError = HttpAnswer<ApiErrorCode>;

export function toHttpError(error: unknown): HttpError {
  if (error instanceof IdempotencyConflictError) return httpAnswer(409, error.code, error.message);
  return toHttpAnswer(error);
}

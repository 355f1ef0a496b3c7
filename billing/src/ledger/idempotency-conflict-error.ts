/**
 * An idempotency key reused with other parameters (HTTP 409 `idempotency_conflict`). Its own class because the
 * shared AppError codes are those of both transports, and this one only exists in the billing API.
 */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  readonly code = 'idempotency_conflict';
  constructor(readonly idempotencyKey: string) {
    super('this idempotency key was used with other parameters');
  }
}

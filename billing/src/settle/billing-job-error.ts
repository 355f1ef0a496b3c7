/**
 * A billing job that can never succeed, whatever the retries: the worker turns it into BullMQ's
 * UnrecoverableError so the job fails at once and stays in the failed set for a person to look at.
 */
export type BillingJobErrorCode =
  /** The job's session header names a different user or clone than the stored session. */
  | 'session_mismatch'
  /** The header's user or clone does not exist. */
  | 'unknown_reference';

export class BillingJobError extends Error {
  override readonly name = 'BillingJobError';
  constructor(
    readonly code: BillingJobErrorCode,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The zod schemas of the billing API's queries and bodies. Anything they refuse is `invalid_payload` (400);
 * empty query values count as absent, as an HTML form sends them.
 */
import { z } from 'zod';
import { storableText } from '#shared/contract/storable-text.ts';
import { AppError } from '#shared/errors/app-error.ts';
import type { DateRange, TimeRange } from '#billing/ledger/time-range.ts';

/**
 * Years Postgres and JavaScript agree on: year 0000 parses in JavaScript (1 BC) but is no date to Postgres, and a
 * bound of a range is no use outside them anyway.
 */
const inPostgresYears = (text: string) => {
  const time = Date.parse(text);
  return Number.isFinite(time) && time >= Date.UTC(1, 0, 1) && time < Date.UTC(10_000, 0, 1);
};
const IN_YEARS = 'a year from 0001 to 9999';

/** 'YYYY-MM-DD' (midnight UTC) or an ISO datetime with Z or an offset. */
const instant = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })], { error: 'an ISO date (YYYY-MM-DD) or datetime' })
  .refine(inPostgresYears, IN_YEARS);
const date = z.iso.date({ error: 'a date YYYY-MM-DD' }).refine(inPostgresYears, IN_YEARS);
const id = z.guid({ error: 'a uuid' });

const timeRange = { from: instant.optional(), to: instant.optional() };
const dateRange = { from: date.optional(), to: date.optional() };

export const sessionListQuery = z.object({
  ...timeRange,
  userId: id.optional(),
  cloneId: id.optional(),
  creatorId: id.optional(),
  type: z.enum(['chat', 'voice', 'video']).optional(),
  endReason: storableText().max(100).optional(),
  cursor: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const sessionParams = z.object({ id });

export const rangeQuery = z.object(timeRange);

export const creatorAnalyticsQuery = z.object({ ...dateRange, creatorId: id.optional(), cloneId: id.optional() });

export const userAnalyticsQuery = z.object({ ...dateRange, userId: id.optional() });

/** numeric(14,4): up to ten whole digits and four decimals. */
const signedAmount = z
  .string()
  .regex(/^-?\d{1,10}(\.\d{1,4})?$/, 'a signed decimal string with at most 4 decimal places')
  // a digit other than 0 (the regex may have refused the string already: no parsing here)
  .refine((amount) => /[1-9]/.test(amount), 'must not be zero');

export const adjustmentBody = z.strictObject({
  idempotencyKey: storableText().min(1).max(100),
  sessionId: id,
  amount: signedAmount,
  reason: storableText()
    .max(500)
    .refine((reason) => reason.trim().length > 0, 'must not be blank'),
});

/** Parses with `schema`, or throws AppError('invalid_payload') naming each problem. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, where: 'query' | 'body' | 'params'): z.output<T> {
  const value = where === 'query' ? withoutEmptyValues(input) : input;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || where}: ${issue.message}`);
  throw new AppError('invalid_payload', problems.join('; '));
}

function withoutEmptyValues(input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input;
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== ''));
}

/** An instant range from validated query strings. */
export function toTimeRange(query: { from?: string | undefined; to?: string | undefined }): TimeRange {
  return {
    from: query.from === undefined ? undefined : new Date(query.from),
    to: query.to === undefined ? undefined : new Date(query.to),
  };
}

export function toDateRange(query: { from?: string | undefined; to?: string | undefined }): DateRange {
  return { from: query.from, to: query.to };
}

/** POST /api/credits/checkout: the pack, and the buyer's key for this purchase (a retry sends the same). */
export const checkoutBody = z.strictObject({
  packId: z.string().min(1).max(32),
  idempotencyKey: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional(),
});

/** POST /api/subscriptions/checkout: the paid tier, and the buyer's key for this request. */
export const subscriptionCheckoutBody = z.strictObject({
  tier: z.enum(['pro', 'enterprise']),
  idempotencyKey: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional(),
});

/** GET /api/ledger/movements: a time range, and optionally one person or one kind. */
export const movementsQuery = z.object({
  ...timeRange,
  userId: id.optional(),
  kind: z.enum(['opening_balance', 'purchase', 'card_refund', 'dispute', 'grant', 'payout', 'payout_reversal']).optional(),
});

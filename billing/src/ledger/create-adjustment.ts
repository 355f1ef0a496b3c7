/**
 * Records an adjustment (a refund or an extra charge) of a settled session, in one transaction: the session and
 * then the user are locked (the order settlements take), the limits checked, the ledger_adjustments row and its
 * three entries written, and the user's credits and total spent and the clone's earnings moved.
 *
 * Idempotent as Stripe's API: a key seen before with the same parameters answers the first result and changes
 * nothing; with other parameters it is an IdempotencyConflictError. Duplicates racing each other serialise on a
 * transaction-scoped advisory lock on the key (the unique key is the backstop), so exactly one adjustment is made.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { formatMoney, parseMoney, type Ratio } from '#shared/money/money.ts';
import { adjustmentLedgerEntries, adjustmentSplit } from './adjustment-entries.ts';
import { IdempotencyConflictError } from './idempotency-conflict-error.ts';
import { ledgerEntryOrder, toLedgerEntryView, type LedgerEntryView } from './ledger-entry-view.ts';
import { moneyText } from './money-text.ts';

export interface AdjustmentRequest {
  /** The client's key: the same key is the same adjustment. */
  idempotencyKey: string;
  sessionId: string;
  /** Signed decimal, at most four places, not zero: positive gives credits back to the user. */
  amount: string;
  reason: string;
  /** The admin making it. */
  authorId: string;
}

export interface AdjustmentView {
  id: string;
  sessionId: string;
  userId: string;
  creatorId: string;
  amount: string;
  reason: string;
  authorId: string;
  createdAt: string;
}

export interface AdjustmentResult {
  /** false when the key was seen before and this is the first result again. */
  created: boolean;
  adjustment: AdjustmentView;
  entries: LedgerEntryView[];
}

const UNIQUE_VIOLATION = '23505';
const KEY_CONSTRAINT = 'ledger_adjustments_idempotency_key_key';

/** sha256 of the canonical request (what makes two requests with one key the same adjustment). */
function adjustmentRequestHash(request: Pick<AdjustmentRequest, 'sessionId' | 'amount' | 'reason'>): string {
  const canonical = JSON.stringify({
    sessionId: request.sessionId.toLowerCase(),
    amount: formatMoney(parseMoney(request.amount)),
    reason: request.reason,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

export async function createAdjustment(
  db: Kysely<Database>,
  request: AdjustmentRequest,
  platformFeeRate: Ratio,
): Promise<AdjustmentResult> {
  const amount = parseMoney(request.amount);
  if (amount === 0n) throw new AppError('invalid_payload', 'amount: must not be zero');
  const requestHash = adjustmentRequestHash(request);
  try {
    return await db.transaction().execute((trx) => applyAdjustment(trx, request, requestHash, platformFeeRate));
  } catch (error) {
    const pg = error as { code?: string; constraint?: string };
    if (pg.code !== UNIQUE_VIOLATION || pg.constraint !== KEY_CONSTRAINT) throw error;
    // a duplicate committed first, past the advisory lock (which should not happen): answer as a replay
    const replay = await previousResult(db, request.idempotencyKey, requestHash);
    if (!replay) throw error;
    return replay;
  }
}

async function applyAdjustment(
  trx: Transaction<Database>,
  request: AdjustmentRequest,
  requestHash: string,
  platformFeeRate: Ratio,
): Promise<AdjustmentResult> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`ledger_adjustment:${request.idempotencyKey}`}, 0))`.execute(trx);
  const replay = await previousResult(trx, request.idempotencyKey, requestHash);
  if (replay) return replay;

  const amount = parseMoney(request.amount);
  const session = await trx
    .selectFrom('sessions')
    .select(['user_id', 'clone_id', 'settled_at'])
    .where('id', '=', request.sessionId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (!session) throw new AppError('not_found', 'no such session', { sessionId: request.sessionId });
  if (!session.settled_at) {
    throw new AppError('invalid_state', 'the session is not settled yet', { sessionId: request.sessionId });
  }
  const user = await trx
    .selectFrom('user_profiles')
    .select(['credits_remaining'])
    .where('id', '=', session.user_id)
    .forNoKeyUpdate()
    .executeTakeFirstOrThrow();
  // what the user paid for this session: the settlement's debit net of earlier adjustments
  const paid = await trx
    .selectFrom('ledger_entries')
    .select(sql<string>`coalesce(-sum(amount), 0)::text`.as('paid'))
    .where('session_id', '=', request.sessionId)
    .where('account_kind', '=', 'user')
    .executeTakeFirstOrThrow();
  const paidUnits = parseMoney(paid.paid);
  if (amount > 0n && amount > paidUnits) {
    throw new AppError('invalid_state', 'the refund exceeds what the user paid for the session net of earlier refunds', {
      sessionId: request.sessionId,
      refundable: formatMoney(paidUnits),
    });
  }
  const credits = parseMoney(user.credits_remaining);
  if (amount < 0n && credits + amount < 0n) {
    throw new AppError('insufficient_credits', 'the charge exceeds the credits the user has', {
      userId: session.user_id,
      creditsRemaining: formatMoney(credits),
    });
  }

  const split = adjustmentSplit(amount, platformFeeRate);
  const clone = await trx
    .updateTable('clones')
    .set({ total_earnings: sql`total_earnings + ${formatMoney(split.creator)}::numeric` })
    .where('id', '=', session.clone_id)
    .returning(['creator_id'])
    .executeTakeFirstOrThrow();
  const adjustment = await trx
    .insertInto('ledger_adjustments')
    .values({
      idempotency_key: request.idempotencyKey,
      request_hash: requestHash,
      session_id: request.sessionId,
      user_id: session.user_id,
      creator_id: clone.creator_id,
      amount: formatMoney(amount),
      reason: request.reason,
      author_id: request.authorId,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const entries = await trx
    .insertInto('ledger_entries')
    .values(
      adjustmentLedgerEntries(
        { adjustmentId: adjustment.id, sessionId: request.sessionId, userId: session.user_id, creatorId: clone.creator_id },
        split,
      ),
    )
    .returning(['id', 'kind', 'account_kind', 'account_id', 'amount', 'adjustment_id', 'created_at'])
    .execute();
  await trx
    .updateTable('user_profiles')
    .set({
      credits_remaining: sql`credits_remaining + ${formatMoney(amount)}::numeric`,
      total_spent: sql`total_spent - ${formatMoney(amount)}::numeric`,
    })
    .where('id', '=', session.user_id)
    .execute();
  return { created: true, adjustment: toAdjustmentView(adjustment), entries: entries.map(toLedgerEntryView) };
}

/** The first result of a key, or undefined when the key is new; other parameters: IdempotencyConflictError. */
async function previousResult(
  db: Kysely<Database>,
  idempotencyKey: string,
  requestHash: string,
): Promise<AdjustmentResult | undefined> {
  const adjustment = await db
    .selectFrom('ledger_adjustments')
    .selectAll()
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  if (!adjustment) return undefined;
  if (adjustment.request_hash !== requestHash) throw new IdempotencyConflictError(idempotencyKey);
  const entries = await db
    .selectFrom('ledger_entries as l')
    .select(['l.id', 'l.kind', 'l.account_kind', 'l.account_id', 'l.amount', 'l.adjustment_id', 'l.created_at'])
    .where('l.adjustment_id', '=', adjustment.id)
    .orderBy(ledgerEntryOrder('l'))
    .execute();
  return { created: false, adjustment: toAdjustmentView(adjustment), entries: entries.map(toLedgerEntryView) };
}

function toAdjustmentView(row: {
  id: string;
  session_id: string;
  user_id: string;
  creator_id: string;
  amount: string;
  reason: string;
  author_id: string;
  created_at: Date;
}): AdjustmentView {
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    creatorId: row.creator_id,
    amount: moneyText(row.amount),
    reason: row.reason,
    authorId: row.author_id,
    createdAt: row.created_at.toISOString(),
  };
}

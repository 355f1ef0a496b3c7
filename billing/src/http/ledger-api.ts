/**
 * The billing staff API under /api (every route admin-only, see adminAuth): settled sessions and their audit,
 * the ledger as CSV, the reconciliation, daily analytics, adjustments, and forgetting a person. Handlers validate, call the ledger
 * queries (billing/src/ledger) and throw; the app's one error handler answers failures.
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { Database } from '#shared/db/schema.ts';
import type { Ratio } from '#shared/money/money.ts';
import { createAdjustment } from '#billing/ledger/create-adjustment.ts';
import { forgetUser } from '#billing/ledger/forget-user.ts';
import { listMoneyMovements } from '#billing/ledger/money-movements.ts';
import { creatorAnalytics } from '#billing/ledger/creator-analytics.ts';
import { openLedgerExport } from '#billing/ledger/ledger-export.ts';
import { listSessions } from '#billing/ledger/list-sessions.ts';
import { reconcile, type FailedBillingJob } from '#billing/ledger/reconciliation.ts';
import { sessionDetail } from '#billing/ledger/session-detail.ts';
import { userAnalytics } from '#billing/ledger/user-analytics.ts';
import { adminAuth } from './admin-auth.ts';
import {
  adjustmentBody,
  creatorAnalyticsQuery,
  movementsQuery,
  parseInput,
  rangeQuery,
  sessionListQuery,
  sessionParams,
  toDateRange,
  toTimeRange,
  userAnalyticsQuery,
} from './api-schemas.ts';

/** The little of a logger the API needs (pino fits). */
export interface ApiLogger {
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

export interface LedgerApiOptions {
  db: Kysely<Database>;
  /** Checks the admin's bearer token (tokenVerifierFromConfig). */
  verifier: TokenVerifier;
  /** Splits adjustments as settlements are split (config PLATFORM_FEE_RATE). */
  platformFeeRate: Ratio;
  logger: ApiLogger;
  /** Told after an adjustment changed a user's credits (the billing process refreshes the live state). */
  onBalanceChanged?: ((userId: string) => Promise<void>) | undefined;
  /** The billing queue's failed jobs, for the reconciliation; default none known. */
  failedJobs?: (() => Promise<FailedBillingJob[]>) | undefined;
}

/** A file name part from a query bound: what it said, reduced to safe characters. */
function fileNamePart(value: string | undefined, fallback: string): string {
  return value === undefined ? fallback : value.replace(/[^0-9A-Za-z.-]/g, '-');
}

export async function ledgerApi(api: FastifyInstance, options: LedgerApiOptions): Promise<void> {
  const { db, logger, verifier } = options;
  api.decorateRequest('adminId', '');
  api.addHook('onRequest', adminAuth(db, verifier));
  api.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });

  api.get('/ledger/sessions', async (request) => {
    const { from, to, ...filter } = parseInput(sessionListQuery, request.query, 'query');
    return listSessions(db, { ...filter, ...toTimeRange({ from, to }) });
  });

  api.get('/ledger/sessions/:id', async (request) => {
    const { id } = parseInput(sessionParams, request.params, 'params');
    return sessionDetail(db, id);
  });

  api.get('/ledger/export.csv', async (request, reply) => {
    const query = parseInput(rangeQuery, request.query, 'query');
    const csv = await openLedgerExport(db, toTimeRange(query), {
      onError: (error) => logger.error({ err: error }, 'ledger export failed while streaming'),
    });
    const name = `ledger-${fileNamePart(query.from, 'start')}-${fileNamePart(query.to, 'end')}.csv`;
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(csv);
  });

  api.get('/ledger/reconciliation', async (request) => {
    const query = parseInput(rangeQuery, request.query, 'query');
    return reconcile(db, toTimeRange(query), { failedJobs: await options.failedJobs?.() });
  });

  api.get('/ledger/movements', async (request) => {
    const { from, to, ...filter } = parseInput(movementsQuery, request.query, 'query');
    return { movements: await listMoneyMovements(db, toTimeRange({ from, to }), filter) };
  });

  api.get('/analytics/creators', async (request) => {
    const query = parseInput(creatorAnalyticsQuery, request.query, 'query');
    return { rows: await creatorAnalytics(db, { ...query, ...toDateRange(query) }) };
  });

  api.get('/analytics/users', async (request) => {
    const query = parseInput(userAnalyticsQuery, request.query, 'query');
    return { rows: await userAnalytics(db, { ...query, ...toDateRange(query) }) };
  });

  api.post('/ledger/adjustments', async (request, reply) => {
    const body = parseInput(adjustmentBody, request.body, 'body');
    const result = await createAdjustment(db, { ...body, authorId: request.adminId }, options.platformFeeRate);
    if (result.created) {
      logger.info(
        { adjustmentId: result.adjustment.id, sessionId: body.sessionId, amount: result.adjustment.amount, authorId: request.adminId },
        'ledger adjustment recorded',
      );
      await options.onBalanceChanged?.(result.adjustment.userId).catch((error: unknown) =>
        logger.warn({ err: error, userId: result.adjustment.userId }, 'live balance refresh after an adjustment failed'),
      );
    }
    return reply.code(result.created ? 201 : 200).send({ adjustment: result.adjustment, entries: result.entries });
  });

  // deleting a person (README, *Inside the Supabase project*): the profile anonymised, the money records kept
  api.post('/users/:id/forget', async (request) => {
    const { id } = parseInput(sessionParams, request.params, 'params');
    const user = await forgetUser(db, id);
    logger.info({ userId: id, authorId: request.adminId }, 'person forgotten');
    return { user };
  });
}

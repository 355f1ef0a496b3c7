/**
 * Creator payouts for billing staff (admin-only, like the rest of /api):
 * - `PUT /api/creators/:id/payout-account` `{ stripeAccountId }` — where a creator is paid (their Connect account);
 * - `GET /api/payouts/balances[?creatorId]` — per creator: earned, paid, pending, owed (earned − paid − pending);
 * - `POST /api/payouts/run` `{ period: 'YYYY-MM' }` — pays everything owed above PAYOUT_MINIMUM to each creator with an
 *   account, once per creator and period (a second run answers the same payouts and retries a pending transfer);
 * - `GET /api/payouts?period` — the payouts of a period.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import type Stripe from 'stripe';
import { z } from 'zod';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { creatorBalances, listPayouts, runPayouts, type PayoutSettings } from '#billing/payments/creator-payouts.ts';
import { adminAuth } from './admin-auth.ts';
import { parseInput, sessionParams } from './api-schemas.ts';
import type { ApiLogger } from './ledger-api.ts';

export interface PayoutsApiOptions {
  db: Kysely<Database>;
  verifier: TokenVerifier;
  stripe: Stripe | undefined;
  settings: PayoutSettings;
  logger: ApiLogger;
}

const period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM');
const accountBody = z.strictObject({ stripeAccountId: z.string().regex(/^acct_[A-Za-z0-9]{1,64}$/, 'a Stripe account id (acct_…)') });
const runBody = z.strictObject({ period });
const periodQuery = z.strictObject({ period });
const balancesQuery = z.strictObject({ creatorId: z.string().uuid().transform((id) => id.toLowerCase()).optional() });

export const payoutsApi: FastifyPluginAsync<PayoutsApiOptions> = async (api, options) => {
  const { db, logger } = options;
  api.decorateRequest('adminId', '');
  api.addHook('onRequest', adminAuth(db, options.verifier));

  api.put('/creators/:id/payout-account', async (request) => {
    const { id } = parseInput(sessionParams, request.params, 'params');
    const { stripeAccountId } = parseInput(accountBody, request.body, 'body');
    const creator = await db.selectFrom('user_profiles').select('role').where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    if (!creator) throw new AppError('not_found', 'no such creator');
    if (creator.role !== 'creator' && creator.role !== 'admin') throw new AppError('invalid_state', 'only creators are paid');
    await db
      .insertInto('payout_accounts')
      .values({ creator_id: id, stripe_account_id: stripeAccountId })
      .onConflict((oc) => oc.column('creator_id').doUpdateSet({ stripe_account_id: stripeAccountId, updated_at: new Date() }))
      .execute();
    logger.info({ creatorId: id, authorId: request.adminId }, 'payout account set');
    return { creatorId: id, stripeAccountId };
  });

  api.get('/payouts/balances', async (request) => {
    const { creatorId } = parseInput(balancesQuery, request.query, 'query');
    return { balances: await creatorBalances(db, creatorId) };
  });

  api.post('/payouts/run', async (request) => {
    const body = parseInput(runBody, request.body, 'body');
    const payouts = await runPayouts(db, options.stripe, options.settings, body.period);
    logger.info({ period: body.period, payouts: payouts.length, authorId: request.adminId }, 'payout run');
    return { period: body.period, payouts };
  });

  api.get('/payouts', async (request) => {
    const query = parseInput(periodQuery, request.query, 'query');
    return { payouts: await listPayouts(db, query.period) };
  });
};

/**
 * The billing process's HTTP app: `/healthz` and `/metrics`, the billing staff API under `/api` (admin-only), credit
 * purchases (`/api/credits/*`, `/stripe/webhook`) and the
 * web console (`/`, `/console/*`), on the shared hardened app (createHttpApp): every failure is
 * `{ error: { code, message } }` (toHttpError), requests have deadlines, and /metrics may require METRICS_TOKEN.
 * Built without listening, so tests call it with `inject` or listen on port 0.
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { createHttpApp, type HttpLimits } from '#shared/http/http-app.ts';
import { registerOpsRoutes } from '#shared/observability/ops-routes.ts';
import { tokenVerifierFromConfig } from '#shared/auth/token-verifier-from-config.ts';
import { closeUnusedConnections } from './close-unused-connections.ts';
import { consoleFiles } from './console-files.ts';
import { toHttpError } from './http-error.ts';
import { ledgerApi, type ApiLogger, type LedgerApiOptions } from './ledger-api.ts';
import { documentsApi, type DocumentsApiOptions } from './documents-api.ts';
import { paymentsApi } from './payments-api.ts';
import { payoutsApi } from './payouts-api.ts';
import { stripeFromConfig } from '#billing/payments/stripe-client.ts';
import { parseMoney } from '#shared/money/money.ts';

export interface BillingAppOptions {
  db: Kysely<Database>;
  config: Pick<
    Config,
    | 'JWT_SECRET'
    | 'JWT_AUDIENCE'
    | 'jwksUrl'
    | 'platformFeeRate'
    | 'METRICS_TOKEN'
    | 'STRIPE_SECRET_KEY'
    | 'STRIPE_WEBHOOK_SECRET'
    | 'STRIPE_API_URL'
    | 'creditPacks'
    | 'subscriptionPlans'
    | 'PAYOUT_MINIMUM'
    | 'PAYOUT_MINOR_PER_CREDIT'
    | 'CREDIT_CURRENCY'
    | 'CHECKOUT_SUCCESS_URL'
    | 'CHECKOUT_CANCEL_URL'
  > &
    HttpLimits;
  logger: ApiLogger;
  /** Served on /metrics. */
  registry: Registry;
  /** /healthz's dependency checks by name; each rejects when its dependency does not answer. */
  checks: Record<string, () => Promise<unknown>>;
  /** Told after an adjustment or a payment changed a user's credits. Default: nothing. */
  onBalanceChanged?: (userId: string) => Promise<void>;
  /** The billing queue's failed jobs, for the reconciliation. Default: none known. */
  failedJobs?: LedgerApiOptions['failedJobs'];
  /** The web console's directory. Default billing/console. */
  consoleDir?: string;
  /** The creators' knowledge-base upload API; absent: not served. */
  documents?: Omit<DocumentsApiOptions, 'db' | 'verifier'>;
}

/** Largest request body: an adjustment is well under 1 KiB. */
const BODY_LIMIT = 16 * 1024;

export function buildBillingApp(options: BillingAppOptions): FastifyInstance {
  const { logger } = options;
  const app = createHttpApp({
    limits: options.config,
    bodyLimit: BODY_LIMIT,
    toAnswer: toHttpError,
    onServerError: (error, request) =>
      logger.error({ err: error, method: request?.method, route: request?.routeOptions.url }, 'billing http request failed'),
  });
  closeUnusedConnections(app);

  registerOpsRoutes(app, { registry: options.registry, checks: options.checks, metricsToken: options.config.METRICS_TOKEN });
  // one verifier for both APIs: one cache of the signing keys per process
  const verifier = tokenVerifierFromConfig(options.config);
  app.register(consoleFiles, { dir: options.consoleDir });
  if (options.documents) {
    app.register(documentsApi, {
      prefix: '/api',
      db: options.db,
      verifier,
      ...options.documents,
    });
  }
  const stripe = stripeFromConfig(options.config);
  app.register(payoutsApi, {
    prefix: '/api',
    db: options.db,
    verifier,
    stripe,
    settings: { minimum: parseMoney(options.config.PAYOUT_MINIMUM), minorPerCredit: options.config.PAYOUT_MINOR_PER_CREDIT, currency: options.config.CREDIT_CURRENCY },
    logger,
  });
  app.register(paymentsApi, {
    db: options.db,
    verifier,
    stripe,
    webhookSecret: options.config.STRIPE_WEBHOOK_SECRET,
    checkout: {
      packs: options.config.creditPacks,
      currency: options.config.CREDIT_CURRENCY,
      successUrl: options.config.CHECKOUT_SUCCESS_URL,
      cancelUrl: options.config.CHECKOUT_CANCEL_URL,
    },
    plans: options.config.subscriptionPlans,
    logger,
    onBalanceChanged: options.onBalanceChanged,
  });
  app.register(ledgerApi, {
    prefix: '/api',
    db: options.db,
    verifier,
    platformFeeRate: options.config.platformFeeRate,
    logger,
    onBalanceChanged: options.onBalanceChanged,
    failedJobs: options.failedJobs,
  });
  return app;
}

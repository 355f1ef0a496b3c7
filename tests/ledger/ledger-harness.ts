/**
 * The billing app on a throwaway database for the ledger tests: an admin, tokens, `request` (fastify inject with the
 * admin's token unless told otherwise), and a builder of settled sessions with their audit trail, through the real
 * billing functions (writeFacts through the fixtures' applySessionState and storeMessage, settleSession).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Registry } from 'prom-client';
import { sql } from 'kysely';
import { loadConfig, type Config } from '#shared/config/config.ts';
import type { SettleSessionJob } from '#shared/contract/billing-jobs.ts';
import { parseMoney, formatMoney } from '#shared/money/money.ts';
import { timeCost, durationMinutes } from '#shared/money/pricing.ts';
import { buildBillingApp, type BillingAppOptions } from '#billing/http/billing-app.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { messageJob, sessionHeader, stateJob, type Parties, applySessionState, storeMessage } from '../billing/fixtures.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';

export const SECRET = 'ledger-test-secret-0123456789-0123456789';

export interface LedgerHarness {
  database: TestDatabase;
  config: Readonly<Config>;
  app: FastifyInstance;
  adminId: string;
  adminToken: string;
  /** A token for the user (claims overridable). */
  token(userId: string, options?: { expiresIn?: string | number; audience?: string; secret?: string }): Promise<string>;
  /** inject with the admin's bearer token unless `token` is given (null: no Authorization header). */
  request(options: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
  /** GET `url` as the admin and parse the JSON, asserting `status` (default 200). */
  getJson<T = any>(url: string, status?: number): Promise<T>;
  close(): Promise<void>;
}

export async function startLedgerApp(
  options: Partial<Pick<BillingAppOptions, 'consoleDir' | 'onBalanceChanged' | 'documents'>> & { env?: Record<string, string> } = {},
): Promise<LedgerHarness> {
  const { env, ...appOptions } = options;
  const database = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'silent',
    PLATFORM_FEE_RATE: '0.20',
    ...env,
  });
  const silent = { info() {}, warn() {}, error() {} };
  const app = buildBillingApp({
    db: database.db,
    config,
    logger: process.env.TEST_LOG_LEVEL ? { info: console.log, warn: console.warn, error: console.error } : silent,
    registry: new Registry(),
    checks: { postgres: () => sql`select 1`.execute(database.db) },
    ...appOptions,
  });
  await app.ready();
  const adminId = await createUser(database, 'admin');
  const token: LedgerHarness['token'] = (userId, claims = {}) =>
    signUserToken({ secret: claims.secret ?? SECRET, audience: claims.audience ?? config.JWT_AUDIENCE, userId, expiresIn: claims.expiresIn });
  const adminToken = await token(adminId);
  const request: LedgerHarness['request'] = ({ token: given, headers, ...rest }) => {
    const bearer = given === undefined ? adminToken : given;
    return app.inject({
      ...rest,
      headers: { ...headers, ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }) },
    });
  };
  return {
    database,
    config,
    app,
    adminId,
    adminToken,
    token,
    request,
    async getJson(url, status = 200) {
      const response = await request({ method: 'GET', url });
      if (response.statusCode !== status) {
        throw new Error(`GET ${url}: expected ${status}, got ${response.statusCode} ${response.body}`);
      }
      return response.json();
    },
    async close() {
      await app.close();
      await database.drop();
    },
  };
}

export async function createUser(
  database: TestDatabase,
  role: 'user' | 'creator' | 'admin' = 'user',
  credits = '100.0000',
): Promise<string> {
  const id = randomUUID();
  await database.db
    .insertInto('user_profiles')
    .values({ id, email: `${role}-${id}@test.local`, role, credits_remaining: credits })
    .execute();
  return id;
}

/** One step of a session's audit trail: the state from `at` on. */
export interface Step {
  status: 'active' | 'paused';
  at: string;
}

export interface SettledSessionOptions {
  /** The states before the end; default one active period from `start`. */
  steps?: Step[];
  start?: string;
  end?: string;
  rate?: string;
  type?: 'chat' | 'voice' | 'video';
  reason?: string;
  /** Costs of AI replies stored as messages. */
  aiCosts?: string[];
  /** Overrides of the settlement job (e.g. a different activeMs or totalCost than the trail gives). */
  settle?: Partial<SettleSessionJob>;
  /** Skip the state jobs: only the settlement's ended event is on the trail. */
  noTrail?: boolean;
}

export interface SettledSession {
  sessionId: string;
  activeMs: number;
  totalCost: string;
}

/**
 * A session through the real billing path: its state jobs (the audit trail), AI messages, and settlement with the
 * total the trail gives (time at the rate over the active periods + AI costs), unless overridden.
 */
export async function settledSession(
  database: TestDatabase,
  config: Readonly<Config>,
  parties: Parties,
  options: SettledSessionOptions = {},
): Promise<SettledSession> {
  const start = options.start ?? '2025-03-01T10:00:00.000Z';
  const end = options.end ?? new Date(Date.parse(start) + 10 * 60_000).toISOString();
  const rate = options.rate ?? '1.5000';
  const steps = options.steps ?? [{ status: 'active', at: start }];
  const header = sessionHeader(parties, { ratePerMinute: rate, startTime: start, type: options.type ?? 'chat' });
  let activeMs = 0;
  let version = 0;
  for (const [index, step] of steps.entries()) {
    version += 1;
    const previous = steps[index - 1];
    if (previous?.status === 'active') activeMs += Date.parse(step.at) - Date.parse(previous.at);
    if (!options.noTrail) {
      await applySessionState(database.db, stateJob(header, { status: step.status, version, at: step.at, activeMs }));
    }
  }
  const last = steps.at(-1);
  if (last?.status === 'active') activeMs += Date.parse(end) - Date.parse(last.at);
  let aiCost = 0n;
  for (const [index, cost] of (options.aiCosts ?? []).entries()) {
    aiCost += parseMoney(cost);
    await storeMessage(
      database.db,
      messageJob(header, {
        senderType: 'ai',
        content: `reply ${index}`,
        tokensUsed: 100,
        costIncrement: cost,
        clientMessageId: null,
        createdAt: new Date(Date.parse(start) + 1000 * (index + 1)).toISOString(),
      }),
    );
  }
  const time = timeCost(parseMoney(rate), activeMs);
  const totalCost = formatMoney(time + aiCost);
  const job: SettleSessionJob = {
    session: header,
    version: version + 1,
    endTime: end,
    reason: options.reason ?? 'user',
    activeMs,
    durationMinutes: durationMinutes(activeMs),
    timeCost: formatMoney(time),
    aiCost: formatMoney(aiCost),
    totalCost,
    messageCount: options.aiCosts?.length ?? 0,
    userMessageCount: 0,
    ...options.settle,
  };
  const result = await settleSession(database.db, job, config.platformFeeRate);
  return { sessionId: header.sessionId, activeMs: job.activeMs, totalCost: result.charged };
}

/**
 * The billing staff console in a real browser (Debian's chromium through playwright-core): a throwaway database
 * with settled sessions, the billing HTTP app in-process on a free port, and the page driven like staff would.
 * Screenshots go to test-artifacts/console-*.png.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { Registry } from 'prom-client';
import { sql } from 'kysely';
import type { FailedBillingJob } from '#billing/ledger/reconciliation.ts';
import { buildBillingApp } from '#billing/http/billing-app.ts';
import { settleSession } from '#billing/settle/settle-session.ts';
import { loadConfig } from '#shared/config/config.ts';
import type { SessionHeader } from '#shared/contract/billing-jobs.ts';
import { createLogger } from '#shared/observability/logger.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS } from '../support/browser.ts';
import { createParties, messageJob, sessionHeader, settleJob, stateJob, type Parties, applySessionState, storeMessage } from '../billing/fixtures.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';
import { startFakeStripe } from '../support/fake-stripe.ts';

const SECRET = 'console-browser-test-secret-0123456789abcdef';
/** Long enough for a cold page load on a slow CI machine, short enough to fail fast. */
const WAIT_MS = 15_000;
const XSS = '<img src=x onerror="window.__xss = 1">';

// The callbacks handed to page.evaluate / waitForFunction run in the page. This project is type-checked without the
// DOM lib, so they see the little of the page they use through these local declarations (not globals).
interface PageElement {
  textContent: string | null;
  hidden: boolean;
  hasAttribute(name: string): boolean;
  requestSubmit(): void;
  scrollIntoView(): void;
}
interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
}
declare const document: PageDocument;
declare const window: { __xss?: number; scrollTo(x: number, y: number): void };
declare function requestAnimationFrame(callback: () => void): number;

// payouts go to a local server that speaks Stripe's wire format
const fakeStripe = await startFakeStripe();
const config = loadConfig({
  NODE_ENV: 'test',
  STRIPE_SECRET_KEY: 'sk_test_console',
  STRIPE_API_URL: fakeStripe.url,
  PAYOUT_MINIMUM: '1',
  JWT_SECRET: SECRET,
  LOG_LEVEL: 'silent',
  AI_PRICE_PER_1K_TOKENS: '0.1000',
  PLATFORM_FEE_RATE: '0.20',
});

let t: TestDatabase;
let app: Awaited<ReturnType<typeof buildBillingApp>>;
let baseUrl = '';
let context: BrowserContext;
let userDataDir = '';
let adminToken = '';
let userToken = '';
let parties: Parties;
const ids = { admin: randomUUID(), member: randomUUID() };
/** The hand-built sessions: A chat with a pause and messages, B voice, C video; plus BULK one-minute chats. */
const sessions: Record<'a' | 'b' | 'c', SessionHeader> = {} as never;
const BULK = 25;
const TOTAL = 3 + BULK;

/** What the app's billing queue reports as failed for good (a test sets it). */
let failedJobs: FailedBillingJob[] = [];

function token(userId: string): Promise<string> {
  return signUserToken({ secret: SECRET, audience: config.JWT_AUDIENCE, userId });
}

const at = (iso: string, plusMs = 0) => new Date(Date.parse(iso) + plusMs).toISOString();

async function seed(): Promise<void> {
  await t.db
    .insertInto('user_profiles')
    .values([
      { id: ids.admin, email: 'billing-admin@test.local', role: 'admin', full_name: 'Billing Admin' },
      { id: ids.member, email: 'member@test.local', role: 'user' },
    ])
    .execute();
  parties = await createParties(t.db, { credits: '500.0000', rate: '1.5000' });
  const second = await createParties(t.db, { creatorId: parties.creatorId, userId: parties.userId, rate: '2.0000' });
  await t.db.updateTable('clones').set({ name: 'Dr. <b>Ledger</b>' }).where('id', '=', parties.cloneId).execute();

  // A: chat, active 10:00–10:04, paused until 10:06, active until 10:10; two AI replies of 150 tokens.
  const a = (sessions.a = sessionHeader(parties, { startTime: '2025-03-01T10:00:00.000Z' }));
  await applySessionState(t.db, stateJob(a, { version: 1, status: 'active', at: a.startTime, activeMs: 0 }));
  await applySessionState(t.db, stateJob(a, { version: 2, status: 'paused', at: at(a.startTime, 240_000), activeMs: 240_000, reason: 'idle' }));
  await applySessionState(t.db, stateJob(a, { version: 3, status: 'active', at: at(a.startTime, 360_000), activeMs: 240_000, reason: 'user' }));
  const messages = [
    { senderType: 'user' as const, content: `hello ${XSS}`, tokensUsed: 0, costIncrement: '0.0000', createdAt: at(a.startTime, 60_000) },
    { senderType: 'ai' as const, content: 'Hi! How can I help?', tokensUsed: 150, costIncrement: '0.0150', createdAt: at(a.startTime, 65_000) },
    { senderType: 'user' as const, content: 'what is a ledger?', tokensUsed: 0, costIncrement: '0.0000', createdAt: at(a.startTime, 420_000) },
    { senderType: 'ai' as const, content: 'A book of accounts.', tokensUsed: 150, costIncrement: '0.0150', createdAt: at(a.startTime, 425_000) },
  ];
  for (const message of messages) await storeMessage(t.db, messageJob(a, message));
  await settleSession(
    t.db,
    settleJob(a, {
      version: 4,
      endTime: at(a.startTime, 600_000),
      reason: 'user',
      activeMs: 480_000,
      durationMinutes: 8,
      timeCost: '12.0000',
      aiCost: '0.0300',
      totalCost: '12.0300',
      messageCount: 4,
      userMessageCount: 2,
    }),
    config.platformFeeRate,
  );

  // B: voice on the second clone, 5 minutes at 2.0000.
  const b = (sessions.b = sessionHeader(second, { type: 'voice', ratePerMinute: '2.0000', startTime: '2025-03-01T11:00:00.000Z' }));
  await settleOneInterval(b, 300_000, '10.0000', 'user');

  // C: video, 3 minutes, ended by the idle timeout.
  const c = (sessions.c = sessionHeader(parties, { type: 'video', startTime: '2025-03-02T09:00:00.000Z' }));
  await settleOneInterval(c, 180_000, '4.5000', 'idle_timeout');

  // BULK one-minute chats on 2025-03-03, so the list has more than one page of 25.
  for (let i = 0; i < BULK; i++) {
    const header = sessionHeader(parties, { startTime: at('2025-03-03T12:00:00.000Z', i * 120_000) });
    await settleOneInterval(header, 60_000, '1.5000', 'user');
  }
}

async function settleOneInterval(header: SessionHeader, activeMs: number, total: string, reason: string): Promise<void> {
  await applySessionState(t.db, stateJob(header, { version: 1, status: 'active', at: header.startTime, activeMs: 0 }));
  await settleSession(
    t.db,
    settleJob(header, {
      version: 2,
      endTime: at(header.startTime, activeMs),
      reason,
      activeMs,
      durationMinutes: Math.ceil(activeMs / 60_000),
      timeCost: total,
      aiCost: '0.0000',
      totalCost: total,
      messageCount: 0,
      userMessageCount: 0,
    }),
    config.platformFeeRate,
  );
}

test.before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  t = await createTestDatabase();
  await seed();
  adminToken = await token(ids.admin);
  userToken = await token(ids.member);

  const registry = new Registry();
  app = await buildBillingApp({
    db: t.db,
    config,
    logger: createLogger(config, 'billing-console-test'),
    registry,
    checks: { postgres: () => sql`select 1`.execute(t.db) },
    failedJobs: async () => failedJobs,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-console-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    timeout: 60_000,
  });
  context.setDefaultTimeout(WAIT_MS);
});

test.after(async () => {
  await context?.close().catch(() => undefined);
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true }).catch(() => undefined);
  await app?.close().catch(() => undefined);
  await t?.drop();
  await fakeStripe.close();
});

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** A new tab (its own sessionStorage) that fails the test on any page error or console error. */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // the browser logs every non-2xx fetch as a console error; those the test provokes on purpose are fine
    if (message.type() === 'error' && !/Failed to load resource|net::ERR_FAILED/.test(message.text())) {
      problems.push(`console: ${message.text()}`);
    }
  });
  page.on('requestfailed', (request) => {
    if (!request.url().startsWith(baseUrl)) problems.push(`external request: ${request.url()}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(baseUrl) && !request.url().startsWith('blob:') && !request.url().startsWith('data:')) {
      problems.push(`external request: ${request.url()}`);
    }
  });
  await page.goto(baseUrl + '/');
  await page.waitForSelector('html[data-ready="true"]');
  return { page, problems };
}

async function signIn(page: Page, jwt: string): Promise<void> {
  await page.fill('#token', jwt);
  await page.keyboard.press('Enter'); // keyboard: Enter in the token field submits
}

async function signedInPage(): Promise<{ page: Page; problems: string[] }> {
  const opened = await openPage();
  await signIn(opened.page, adminToken);
  await waitForRows(opened.page, 25);
  return opened;
}

function waitForText(page: Page, selector: string, text: string): Promise<unknown> {
  return page.waitForFunction(
    ([sel, expected]) => document.querySelector(sel)?.textContent?.includes(expected) === true,
    [selector, text] as const,
  );
}

/** Waits until the sessions table shows exactly `count` session rows and is not loading. */
function waitForRows(page: Page, count: number): Promise<unknown> {
  return page.waitForFunction(
    (expected) =>
      !document.querySelector('#sessions-table')?.hasAttribute('aria-busy') &&
      document.querySelectorAll('#sessions-table tbody tr[data-session-id]').length === expected,
    count,
  );
}

const rowTypes = (page: Page) =>
  page.$$eval('#sessions-table tbody tr[data-session-id]', (rows) => rows.map((row) => row.dataset['type']));
const rowIds = (page: Page) =>
  page.$$eval('#sessions-table tbody tr[data-session-id]', (rows) => rows.map((row) => row.dataset['sessionId']));

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
}

/** At phone width (390 px): one screenful from the top and one from `target`, then back to 1280 px. */
async function phoneScreenshots(page: Page, name: string, target: string): Promise<void> {
  await page.setViewportSize({ width: 390, height: 844 });
  await settle(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}-phone.png`) });
  await page.evaluate((selector) => document.querySelector(selector)?.scrollIntoView(), target);
  await settle(page);
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}-phone-2.png`) });
  await page.setViewportSize({ width: 1280, height: 900 });
  await settle(page);
}

/** Past the page's debounced redraw on resize (100 ms) and two frames. */
async function settle(page: Page): Promise<void> {
  await page.waitForTimeout(250);
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))));
}

async function credits(userId: string): Promise<string> {
  const row = await t.db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  return row.credits_remaining;
}

/** b − a, computed by Postgres on numeric (exact). */
async function difference(a: string, b: string): Promise<string> {
  const { rows } = await sql<{ d: string }>`SELECT (${b}::numeric - ${a}::numeric)::numeric(14,4)::text AS d`.execute(t.db);
  return rows[0]!.d;
}

async function openSession(page: Page, id: string): Promise<void> {
  await page.goto(`${baseUrl}/#/sessions/${id}`);
  await page.waitForFunction(
    () => !document.querySelector('#session-body')?.hidden && !document.querySelector('#session-body')?.hasAttribute('aria-busy'),
  );
}

const ledgerRows = (page: Page) =>
  page.$$eval('#ledger-table tbody tr[data-kind]', (rows) =>
    rows.map((row) => ({
      kind: row.dataset['kind'],
      adjustmentId: row.dataset['adjustmentId'],
      amount: row.querySelector('td:nth-child(4)')?.textContent ?? '',
    })),
  );

// ---------------------------------------------------------------------------------------------------------
// Tests

test('the page loads from the billing app with its own assets only', async () => {
  const { page, problems } = await openPage();
  assert.ok(await page.isVisible('#view-signin'), 'the sign-in form shows first');
  assert.ok(await page.isHidden('#nav'), 'no navigation before signing in');
  assert.is(await page.getAttribute('label[for="token"]', 'for'), 'token');
  await screenshot(page, 'signin');
  assert.equal(problems, []);
  await page.close();
});

test('a non-admin token is told it is not allowed, a bad token is rejected, neither is kept', async () => {
  const { page, problems } = await openPage();
  await signIn(page, userToken);
  await waitForText(page, '#signin-error', 'Not allowed');
  assert.match(await page.textContent('#signin-error') ?? '', /not a billing admin/);
  assert.ok(await page.isVisible('#view-signin'));
  assert.is(await page.evaluate(() => sessionStorage.length), 0, 'the refused token is not kept');
  await screenshot(page, 'not-allowed');

  await signIn(page, 'not-a-jwt');
  await waitForText(page, '#signin-error', 'Token rejected');
  assert.is(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(problems, []);
  await page.close();
});

test('an admin signs in, pages through the settled sessions and signs out', async () => {
  const { page, problems } = await signedInPage();
  assert.ok(await page.isVisible('#nav'));
  assert.match((await page.textContent('#who-name')) ?? '', ids.admin);
  assert.ok(await page.evaluate(() => sessionStorage.length === 1), 'the token is kept in sessionStorage');
  const firstPage = await rowIds(page);
  assert.is(firstPage.length, 25);
  await screenshot(page, 'sessions');
  await phoneScreenshots(page, 'sessions', '#sessions-table tbody tr:nth-child(3)');

  // the token survives a reload of the tab
  await page.reload();
  await waitForRows(page, 25);

  assert.not.ok(await page.isDisabled('#page-next'));
  await page.click('#page-next');
  await waitForRows(page, TOTAL - 25);
  const secondPage = await rowIds(page);
  assert.equal(new Set([...firstPage, ...secondPage]).size, TOTAL, 'every settled session once across the pages');
  assert.ok(await page.isDisabled('#page-next'), 'no page after the last');
  await page.click('#page-prev');
  await waitForRows(page, 25);
  assert.equal(await rowIds(page), firstPage);

  // server text is shown as text: the clone name's markup is not interpreted
  assert.ok(((await page.textContent('#sessions-table tbody')) ?? '').includes('Dr. <b>Ledger</b>'));
  assert.is(await page.$$eval('#sessions-table tbody b', (nodes) => nodes.length), 0);

  await page.click('#sign-out');
  await page.waitForSelector('#view-signin', { state: 'visible' });
  assert.is(await page.evaluate(() => sessionStorage.length), 0, 'signing out forgets the token');
  assert.ok(await page.isHidden('#nav'));
  assert.equal(problems, []);
  await page.close();
});

test('filters narrow the table: by type, by end reason, by date range, by clone', async () => {
  const { page, problems } = await signedInPage();

  await page.selectOption('#f-type', 'voice');
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 1);
  assert.equal(await rowIds(page), [sessions.b.sessionId]);
  assert.equal(await rowTypes(page), ['voice']);

  await page.selectOption('#f-type', 'chat');
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 25);
  assert.ok((await rowTypes(page)).every((type) => type === 'chat'));
  await page.click('#page-next');
  await waitForRows(page, 1 + BULK - 25);
  assert.ok((await rowTypes(page)).every((type) => type === 'chat'));
  await screenshot(page, 'filtered-chat-page2');

  await page.selectOption('#f-type', '');
  await page.fill('#f-reason', 'idle_timeout');
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 1);
  assert.equal(await rowIds(page), [sessions.c.sessionId]);

  // the date range is inclusive of both days: 1 and 2 March hold A, B and C
  await page.fill('#f-reason', '');
  await page.fill('#f-from', '2025-03-01');
  await page.fill('#f-to', '2025-03-02');
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 3);
  assert.equal(new Set(await rowIds(page)), new Set([sessions.a.sessionId, sessions.b.sessionId, sessions.c.sessionId]));

  await page.fill('#f-clone', sessions.b.cloneId);
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 1);
  assert.equal(await rowIds(page), [sessions.b.sessionId]);

  await page.fill('#f-clone', '');
  await page.fill('#f-user', ids.member);
  await page.click('#filters button[type=submit]');
  await waitForRows(page, 0);
  await waitForText(page, '#sessions-table tbody', 'No settled sessions match');

  await page.click('#filters-reset');
  await waitForRows(page, 25);
  assert.equal(problems, []);
  await page.close();
});

test('the CSV export downloads the ledger of the chosen range with the token', async () => {
  const { page, problems } = await signedInPage();
  await page.fill('#f-from', '2025-03-01');
  await page.fill('#f-to', '2025-03-01');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.match(download.suggestedFilename(), /\.csv$/);
  const file = await download.path();
  const csv = await readFile(file, 'utf8');
  assert.ok(csv.includes(sessions.a.sessionId), 'session A is in the export');
  assert.ok(csv.includes(sessions.b.sessionId), 'session B is in the export');
  assert.not.ok(csv.includes(sessions.c.sessionId), 'session C (2 March) is not');
  await waitForText(page, '#sessions-status', 'Exported');
  assert.equal(problems, []);
  await page.close();
});

test('a session shows its timeline, events, messages, ledger and a green recomputation check', async () => {
  const { page, problems } = await signedInPage();
  await page.fill('#f-from', '2025-03-01');
  await page.fill('#f-to', '2025-03-01');
  await page.press('#f-to', 'Enter'); // keyboard: Enter in a filter field applies the filters
  await waitForRows(page, 2);
  await page.focus(`#sessions-table a[href="#/sessions/${sessions.a.sessionId}"]`);
  await page.keyboard.press('Enter'); // keyboard: the session link opens it
  await page.waitForFunction(() => !document.querySelector('#session-body')?.hidden);
  await waitForText(page, '#check-verdict', '✓ Consistent and balanced');
  assert.is(await page.getAttribute('#check-card', 'data-state'), 'ok');
  assert.ok((await page.getAttribute('#check-verdict', 'class'))?.includes('ok'));
  assert.ok((await page.textContent('#check-values'))?.includes('12.0300'), 'the recomputed total');
  assert.ok(((await page.textContent('#check-note')) ?? '').length > 0, 'the note is shown');

  // two active intervals, 4 min each, drawn as two bars; four events; four messages with their costs
  assert.is(await page.$$eval('#timeline svg rect[data-interval]', (rects) => rects.length), 2);
  assert.is(await page.$$eval('#intervals-table tbody tr', (rows) => rows.length), 2);
  assert.equal(
    await page.$$eval('#events-table tbody tr td:nth-child(2)', (cells) => cells.map((c) => c.textContent)),
    ['started', 'paused', 'resumed', 'ended'],
  );
  assert.equal(
    await page.$$eval('#messages-table tbody tr td:nth-child(5)', (cells) => cells.map((c) => c.textContent)),
    ['0.0000', '0.0150', '0.0000', '0.0150'],
  );
  // the message's markup is text, and its onerror never ran
  assert.ok((await page.textContent('#messages-table tbody'))?.includes(XSS));
  assert.is(await page.evaluate(() => window.__xss), undefined);
  assert.is(await page.$$eval('#messages-table img', (images) => images.length), 0);

  const ledger = await ledgerRows(page);
  assert.equal(ledger.map((row) => row.kind).sort(), ['creator_earning', 'platform_fee', 'session_charge']);
  assert.ok(ledger.some((row) => row.amount === '-12.0300'));
  await screenshot(page, 'session');

  await phoneScreenshots(page, 'session', '#ledger-title');
  assert.equal(problems, []);
  await page.close();
});

test('the reconciliation of the seeded days is green, with a chart and one row per day', async () => {
  const { page, problems } = await signedInPage();
  await page.click('#nav a[data-section="reconciliation"]');
  await page.waitForSelector('#view-reconciliation', { state: 'visible' });
  await page.fill('#r-from', '2025-03-01');
  await page.fill('#r-to', '2025-03-03');
  await page.click('#recon-form button[type=submit]');
  await waitForText(page, '#recon-verdict', 'Everything balances from 2025-03-01 to 2025-03-03');
  assert.is(await page.getAttribute('#recon-verdict', 'data-state'), 'ok');
  assert.ok(await page.isHidden('#recon-problems'), 'nothing listed as not balancing');
  assert.equal(
    await page.$$eval('#days-table tbody tr td:first-child', (cells) => cells.map((c) => c.textContent)),
    ['2025-03-01', '2025-03-02', '2025-03-03'],
  );
  // three series per day
  assert.is(await page.$$eval('#recon-chart svg rect[data-series]', (rects) => rects.length), 9);
  assert.is(
    await page.getAttribute('#recon-chart svg rect[data-date="2025-03-01"][data-series="sessionTotals"] ', 'data-date'),
    '2025-03-01',
  );
  await screenshot(page, 'reconciliation');
  await phoneScreenshots(page, 'reconciliation', '#chart-title');
  assert.equal(problems, []);
  await page.close();
});

test('analytics lists the seeded days per user and per clone; an unknown session says so', async () => {
  const { page, problems } = await signedInPage();
  await page.click('#nav a[data-section="analytics"]');
  await page.fill('#a-from', '2025-03-01');
  await page.fill('#a-to', '2025-03-03');
  await page.click('#analytics-form button[type=submit]');
  await page.waitForFunction(
    () => document.querySelectorAll('#users-table tbody tr').length === 3 && document.querySelectorAll('#creators-table tbody tr').length === 4,
  );
  assert.ok(((await page.textContent('#users-table tbody')) ?? '').includes('37.5000'), "3 March's spending");
  await screenshot(page, 'analytics');

  const unknown = randomUUID();
  await page.goto(`${baseUrl}/#/sessions/${unknown}`);
  await waitForText(page, '#session-error', `No session ${unknown}`);
  assert.ok(await page.isHidden('#session-body'));
  assert.equal(problems, []);
  await page.close();
});

test('a refund adds its ledger entries and credits exactly once, however often the form is sent', async () => {
  const { page, problems } = await signedInPage();
  const userId = sessions.a.userId;
  const before = await credits(userId);
  await openSession(page, sessions.a.sessionId);

  const posts: Request[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/ledger/adjustments')) posts.push(request);
  });

  // 1. a refund of 2.5 (typed without trailing zeros), submitted twice at once: one request, one adjustment
  await page.fill('#adj-amount', '2.5');
  await page.fill('#adj-reason', 'audio dropped for two minutes');
  await page.evaluate(() => {
    const form = document.querySelector('#adjust-form')!;
    form.requestSubmit();
    form.requestSubmit();
  });
  await waitForText(page, '#adj-status', 'Refund of 2.5000 recorded');
  let ledger = await ledgerRows(page);
  const adjustmentRows = ledger.filter((row) => row.adjustmentId);
  assert.ok(adjustmentRows.length >= 2, 'the adjustment shows its ledger entries');
  assert.is(new Set(adjustmentRows.map((row) => row.adjustmentId)).size, 1);
  assert.ok(adjustmentRows.some((row) => row.amount === '2.5000'), 'the user is credited 2.5000');
  assert.is(await difference(before, await credits(userId)), '2.5000');
  assert.is(posts.length, 1, 'the second submit while the first was in flight sent nothing');
  assert.is(await page.inputValue('#adj-amount'), '', 'the form is cleared after success');
  assert.equal(await page.$$eval('#adjustments-table tbody tr td:nth-child(2)', (cells) => cells.map((c) => c.textContent)), ['2.5000']);
  await screenshot(page, 'adjustment');

  // 2. the response of a refund is lost: the retry reuses the idempotency key, and the API applies it once
  const afterFirst = await credits(userId);
  let dropped = false;
  await page.route('**/api/ledger/adjustments', async (route) => {
    if (dropped) return route.continue();
    dropped = true;
    await route.fetch(); // the API records it…
    await route.abort('failed'); // …but the browser never hears back
  });
  await page.fill('#adj-amount', '1.0000');
  await page.fill('#adj-reason', 'goodwill');
  await page.click('#adj-submit');
  await waitForText(page, '#adj-error', 'may or may not have been recorded');
  assert.is(await difference(afterFirst, await credits(userId)), '1.0000', 'the lost request was applied');
  await page.click('#adj-submit'); // retry: the same form, the same values
  await waitForText(page, '#adj-status', 'already been recorded');
  await page.unroute('**/api/ledger/adjustments');
  const keys = posts.slice(1).map((request) => (request.postDataJSON() as { idempotencyKey: string }).idempotencyKey);
  assert.is(keys.length, 2);
  assert.is(keys[0], keys[1], 'the retry sent the same idempotency key');
  assert.is.not(keys[0], (posts[0]!.postDataJSON() as { idempotencyKey: string }).idempotencyKey, 'a new submission gets a new key');
  assert.is(await difference(afterFirst, await credits(userId)), '1.0000', 'the retry did not apply it again');
  const stored = await t.db.selectFrom('ledger_adjustments').select(['amount']).where('session_id', '=', sessions.a.sessionId).execute();
  assert.equal(stored.map((row) => row.amount).sort(), ['1.0000', '2.5000']);

  // 3. the API's own error message is shown: a charge larger than the user's credits
  await page.fill('#adj-amount', '-100000');
  await page.fill('#adj-reason', 'too much');
  await page.click('#adj-submit');
  await waitForText(page, '#adj-error', 'insufficient_credits');
  assert.is(await difference(afterFirst, await credits(userId)), '1.0000');

  // 4. the form checks the amount before sending anything
  const sent = posts.length;
  await page.fill('#adj-amount', '1.23456');
  await page.click('#adj-submit');
  await waitForText(page, '#adj-error', 'at most 4 decimals');
  assert.is(posts.length, sent);
  assert.is(await page.getAttribute('#adj-amount', 'aria-invalid'), 'true');

  // the check is still green: the adjustments balance
  await waitForText(page, '#check-verdict', '✓ Consistent and balanced');
  ledger = await ledgerRows(page);
  assert.is(new Set(ledger.filter((row) => row.adjustmentId).map((row) => row.adjustmentId)).size, 2);
  await screenshot(page, 'adjustment-error');
  assert.equal(problems, []);
  await page.close();
});

test('the reconciliation stays green after the adjustments', async () => {
  const { page, problems } = await signedInPage();
  await page.goto(`${baseUrl}/#/reconciliation`);
  await page.fill('#r-from', '2025-03-01');
  await page.fill('#r-to', '2025-03-03');
  await page.click('#recon-form button[type=submit]');
  await waitForText(page, '#recon-verdict', '✓ Everything balances');
  assert.equal(problems, []);
  await page.close();
});

test('payouts: each creator\'s earned, paid, pending and owed; a run for a month pays them once; the reconciliation shows money in and out', async () => {
  // the creator the seeded sessions earned for
  const { account_id: creatorId } = await t.db.selectFrom('ledger_entries').select('account_id').where('account_kind', '=', 'creator').executeTakeFirstOrThrow();
  await t.db.insertInto('payout_accounts').values({ creator_id: creatorId!, stripe_account_id: 'acct_console1' }).execute();
  const { page, problems } = await signedInPage();
  await page.click('#nav a[data-section="payouts"]');
  await page.waitForSelector('#view-payouts', { state: 'visible' });
  await page.waitForFunction((id) => document.querySelector('#balances-table tbody')?.textContent?.includes(id) ?? false, creatorId!);
  const owedCell = () =>
    page.$$eval('#balances-table tbody tr', (rows, id) => rows.find((row) => row.textContent?.includes(id))?.querySelector('td:nth-child(5)')?.textContent ?? '', creatorId!);
  const owedBefore = await owedCell();
  assert.ok(Number(owedBefore) > 1, `owed ${owedBefore}`);
  await page.fill('#p-period', '2026-11');
  await page.click('#payout-run');
  await waitForText(page, '#payouts-status', '2026-11: 1 payout, 1 paid.');
  assert.match(await page.textContent('#run-table tbody') ?? '', /paid/);
  // whole cents were paid: what is left is under one cent
  for (const deadline = Date.now() + WAIT_MS; (await owedCell()) === owedBefore && Date.now() < deadline; ) await page.waitForTimeout(100);
  assert.ok(Number(await owedCell()) < 0.01, `everything owed was paid: ${await owedCell()} left`);
  // a second run for the month pays nobody twice
  await page.click('#payout-run');
  await waitForText(page, '#payouts-status', '2026-11: 1 payout, 1 paid.');
  assert.is(fakeStripe.transfers.size, 1);
  await screenshot(page, 'payouts');

  await page.goto(`${baseUrl}/#/reconciliation`);
  await page.fill('#r-from', '2025-03-01');
  await page.fill('#r-to', '2030-01-01');
  await page.click('#recon-form button[type=submit]');
  await waitForText(page, '#recon-verdict', '✓ Everything balances');
  // the payout and the profiles' opening balances are listed as money movements
  await page.waitForSelector('#movements-table tbody tr[data-kind="payout"]');
  assert.ok((await page.$$eval('#movements-table tbody tr[data-kind="opening_balance"]', (rows) => rows.length)) > 0);
  const payments = await page.textContent('#recon-payments');
  assert.match(payments ?? '', /Opening credits/);
  assert.match(payments ?? '', /Cash in minor/i);
  assert.equal(problems, []);
  await page.close();
});

test('lost facts turn the reconciliation red and name their sessions: a failed job, a settled session missing a message', async () => {
  const { page, problems } = await signedInPage();
  const sessionA = sessions.a.sessionId;
  failedJobs = [{ id: 'msg_lost', name: 'message', sessionIds: [sessionA], failedReason: 'content: must not contain NUL', failedAt: null }];
  // settled past the grace for late messages, one acknowledged message short
  const { settled_at: settledAt } = await t.db.selectFrom('sessions').select('settled_at').where('id', '=', sessionA).executeTakeFirstOrThrow();
  await t.db
    .updateTable('sessions')
    .set((eb) => ({ message_count: eb('message_count', '+', 1), settled_at: new Date(Date.now() - 3600_000) }))
    .where('id', '=', sessionA)
    .execute();
  try {
    await page.goto(`${baseUrl}/#/reconciliation`);
    await page.fill('#r-from', '2025-03-01');
    await page.fill('#r-to', '2025-03-03');
    await page.click('#recon-form button[type=submit]');
    await waitForText(page, '#recon-verdict', '2 lost facts');
    assert.match((await page.textContent('#failed-jobs')) ?? '', /msg_lost message: content: must not contain NUL/);
    assert.is(await page.locator(`#failed-jobs a[href="#/sessions/${sessionA}"]`).count(), 1);
    assert.match((await page.textContent('#message-count-mismatches')) ?? '', new RegExp(`${sessionA} \\d+ of \\d+ messages stored`));
    assert.equal(problems, []);
  } finally {
    failedJobs = [];
    await t.db.updateTable('sessions').set((eb) => ({ message_count: eb('message_count', '-', 1), settled_at: settledAt })).where('id', '=', sessionA).execute();
    await page.close();
  }
});

test.run();

/**
 * The chat widget in a real browser (Debian's chromium through playwright-core) against a whole in-process Tollgate:
 * the demo page driven like a person would (token, clone, chat, meter, pause, resume, end, rating), credits running
 * out on a phone-sized viewport, the embeddable /widget.js on another site's page, and voice calls (the room joined
 * with LiveKit's browser SDK, the call's state driven by signed webhooks and a voice agent on /agent). Screenshots go
 * to test-artifacts/widget-*.png.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import type { WireMessage } from '#shared/contract/socket-events.ts';
import { deleteKeys } from '../support/processes.ts';
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS } from '../support/browser.ts';
import { postWebhook, startRefusingSignalServer, TEST_LIVEKIT_SECRET, type RefusingSignalServer } from '../support/livekit.ts';
import { connectAgent, createClone, createUser, nextEvent, request, startSystem, waitFor, type TestSystem } from '../support/system.ts';

/** Long enough for a cold page load on a slow CI machine, short enough to fail fast. */
const WAIT_MS = 15_000;
const REPLY = 'A ledger records every movement of money twice, so its entries always sum to zero.';
const AVATAR_ORIGIN = 'https://cdn.example';
const AVATAR_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#2a9d8f"/><circle cx="5" cy="4" r="2" fill="#fff"/></svg>';
const XSS = '<img src=x onerror="window.__xss = 1">';
/** An origin that is not the gateway's, for cross-origin requests. */
const HOST_ORIGIN = 'http://shop.example';

// The callbacks handed to page.evaluate run in the page; this project is type-checked without the DOM lib, so they
// see the little of the page they use through these local declarations.
interface PageElement {
  shadowRoot: { querySelector(selector: string): PageElement | null } | null;
  textContent: string | null;
}
declare const document: { querySelector(selector: string): PageElement | null };
declare const window: { __xss?: number };
declare function getComputedStyle(element: PageElement): { backgroundColor: string; fontFamily: string };

let system: TestSystem;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** The embedding site's server (another port, so another origin; loopback like the gateway). */
let host: { url: string; close(): Promise<void> } | undefined;
/** Where the widget's voice calls try to join their rooms (no media server: each join is recorded and refused). */
let signal: RefusingSignalServer;
/** A voice call in which nobody speaks pauses after this long. */
const VOICE_IDLE_MS = 2500;

async function serveHost(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test.before(async () => {
  signal = await startRefusingSignalServer();
  system = await startSystem({
    env: {
      METER_TICK_MS: '200',
      LOW_BALANCE_SECONDS: '120',
      MIN_START_SECONDS: '0',
      LIVEKIT_URL: signal.url,
      VOICE_IDLE_MS: String(VOICE_IDLE_MS),
      AGENT_JOIN_TIMEOUT_MS: '4000',
    },
    openai: { reply: () => REPLY, chunkDelayMs: 30 },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  mkdirSync(ARTIFACTS, { recursive: true });
});

test.after(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await host?.close();
  await system?.close();
  await signal?.close();
});

/** A fresh browser context and page; page errors and console errors are collected for the test to assert on. */
async function openPage(viewport = { width: 1100, height: 900 }): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  context.setDefaultTimeout(WAIT_MS);
  // the avatar host of the clone with an avatar
  await context.route(`${AVATAR_ORIGIN}/**`, (route) => route.fulfill({ status: 200, contentType: 'image/svg+xml', body: AVATAR_SVG }));
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return { page, problems };
}

async function nameClone(cloneId: string, fields: { name: string; bio?: string; avatar_url?: string | null }): Promise<void> {
  await system.database.db.updateTable('clones').set(fields).where('id', '=', cloneId).execute();
}

/** The id of the user's session, once the billing worker has recorded it. */
async function sessionOf(userId: string): Promise<string> {
  const row = await waitFor(
    () => system.database.db.selectFrom('sessions').select('id').where('user_id', '=', userId).executeTakeFirst(),
    WAIT_MS,
    'the session row',
  );
  return row.id;
}

async function settledSession(userId: string) {
  return waitFor(
    () =>
      system.database.db
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('settled_at', 'is not', null)
        .executeTakeFirst(),
    WAIT_MS,
    'the session to be settled',
  );
}

/** The widget on the demo page, signed in with a pasted token; resolves once the clone list shows. */
async function signIn(page: Page, userId: string): Promise<void> {
  await page.goto(`${system.url}/`);
  await page.getByLabel('Access token').fill(await system.token(userId));
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('heading', { name: 'Choose an expert' }).waitFor();
}

test('the gateway serves the demo page, the widget, its assets, socket.io’s browser client and the public clone list', async () => {
  const { cloneId } = await createClone(system, '2.5000');
  const { cloneId: hiddenId } = await createClone(system, '1.0000', { published: false });
  await nameClone(cloneId, { name: 'Listed Clone', avatar_url: `${AVATAR_ORIGIN}/a.svg` });

  const page = await fetch(`${system.url}/`);
  assert.is(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.match(await page.text(), /src="\/widget\.js"/);

  for (const asset of ['/widget.js', '/web/widget.css', '/web/demo.css', '/web/tollgate-client.js', '/socket.io/socket.io.esm.min.js']) {
    const response = await fetch(`${system.url}${asset}`, { headers: { origin: HOST_ORIGIN } });
    assert.is(response.status, 200, asset);
    assert.match(response.headers.get('content-type') ?? '', /javascript|css/, asset);
    await response.arrayBuffer();
  }
  // the widget's transport is the typed client of shared/src/client, bundled (with socket.io-client) as one module
  const bundled = await fetch(`${system.url}/web/tollgate-client.js`, { headers: { origin: HOST_ORIGIN } });
  assert.is(bundled.headers.get('access-control-allow-origin'), HOST_ORIGIN, 'another site may import the client');
  const bundle = await bundled.text();
  assert.match(bundle, /export\s*\{[^}]*TollgateClient/, 'exports TollgateClient');
  assert.match(bundle, /session:history/, 'with its catch-up after a reconnect');
  assert.not.match(bundle, /\bimport\s*[{*(]|from\s*["']socket\.io-client["']/, 'self-contained: nothing left to resolve');
  // LiveKit's browser SDK for the widget's voice calls, bundled the same way (on first request)
  const livekit = await fetch(`${system.url}/web/livekit-client.js`, { headers: { origin: HOST_ORIGIN } });
  assert.is(livekit.status, 200);
  assert.is(livekit.headers.get('access-control-allow-origin'), HOST_ORIGIN);
  const livekitBundle = await livekit.text();
  assert.match(livekitBundle, /export\s*\{[^}]*\bRoom\b/, 'exports Room');
  assert.not.match(livekitBundle, /from\s*["']livekit-client["']/, 'self-contained');
  // the demo page may connect to LiveKit (its WebSocket and its HTTP check), nowhere else but the gateway
  const livekitHost = new URL(signal.url).host;
  assert.match(page.headers.get('content-security-policy') ?? '', new RegExp(`connect-src 'self' ws://${livekitHost} http://${livekitHost};`));
  const esm = await fetch(`${system.url}/socket.io/socket.io.esm.min.js`, { headers: { origin: HOST_ORIGIN } });
  assert.is(esm.headers.get('access-control-allow-origin'), HOST_ORIGIN, 'another site may import the client');
  await esm.arrayBuffer();
  const missing = await fetch(`${system.url}/web/../src/gateway.ts`);
  assert.is(missing.status, 404);
  await missing.arrayBuffer();

  const listed = await fetch(`${system.url}/api/clones`, { headers: { origin: HOST_ORIGIN } });
  assert.is(listed.status, 200);
  assert.is(listed.headers.get('access-control-allow-origin'), HOST_ORIGIN);
  const { clones } = (await listed.json()) as { clones: Array<Record<string, unknown>> };
  const clone = clones.find((c) => c.id === cloneId);
  assert.equal(clone, {
    id: cloneId,
    name: 'Listed Clone',
    avatarUrl: `${AVATAR_ORIGIN}/a.svg`,
    bio: 'Knows about testing.',
    description: 'A clone for tests',
    expertiseAreas: ['testing', 'billing'],
    ratePerMinute: '2.5000',
  });
  assert.not.ok(clones.some((c) => c.id === hiddenId), 'an unpublished clone is not listed');
  const one = (await (await fetch(`${system.url}/api/clones?id=${cloneId}`)).json()) as { clones: unknown[] };
  assert.is(one.clones.length, 1);
  const bad = await fetch(`${system.url}/api/clones?id=nope`);
  assert.is(bad.status, 400);
  await bad.arrayBuffer();
});

test('a person chats with a clone on the demo page: streamed reply, meter, pause, resume, end, settled total, 4 stars', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '6.0000');
  await nameClone(cloneId, { name: 'Dr. Ada Ledger', bio: 'Explains double-entry bookkeeping in plain words.' });
  const { page, problems } = await openPage();

  await signIn(page, userId);
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-picker.png'), fullPage: true });
  const choice = page.getByRole('radio', { name: 'Dr. Ada Ledger' });
  await choice.check();
  assert.ok(await page.getByText('6.0000 credits / min').first().isVisible(), 'the rate is shown');
  await page.getByRole('button', { name: 'Start chat' }).click();

  const badge = page.locator('.tg-badge');
  await page.getByRole('heading', { name: 'Dr. Ada Ledger' }).waitFor();
  assert.is(await badge.textContent(), 'Active');
  assert.ok(await page.getByLabel('Message').evaluate((element) => element === (element.getRootNode() as { activeElement: unknown }).activeElement), 'the message field has focus');

  // the reply streams in: partial text shows before it completes
  await page.getByLabel('Message').fill('What is a ledger?');
  await page.getByLabel('Message').press('Enter');
  await page.locator('.tg-user[data-state="complete"]', { hasText: 'What is a ledger?' }).waitFor();
  const streaming = page.locator('.tg-ai[data-state="streaming"] .tg-text');
  await streaming.waitFor();
  const partial = (await streaming.textContent()) ?? '';
  assert.ok(partial.length > 0 && partial.length < REPLY.length && REPLY.startsWith(partial), `partial reply: ${partial}`);
  await page.locator('.tg-ai[data-state="complete"] .tg-text', { hasText: REPLY }).waitFor();
  assert.is(await page.locator('.tg-log').getAttribute('aria-busy'), null, 'the log is no longer busy');

  // the meter ticks: time, cost and credits left
  const meter = page.getByRole('region', { name: 'Meter' });
  await waitFor(async () => (await meter.locator('dd').nth(0).textContent()) !== '0:00', WAIT_MS, 'the meter time to run');
  await waitFor(async () => (await meter.locator('dd').nth(1).textContent()) !== '0.0000', WAIT_MS, 'the meter cost to run');
  const credits = await waitFor(async () => {
    const text = await meter.locator('dd').nth(2).textContent();
    return text !== null && text !== '—' ? text : undefined;
  }, WAIT_MS, 'credits left');
  assert.match(credits, /^9\d\.\d{4}$/);
  assert.is(await meter.locator('dd').nth(3).textContent(), '6.0000');

  // a reply with citations lists each source's title and part (pushed as the gateway does for a clone's documents)
  const sessionId = await sessionOf(userId);
  const cited: WireMessage = {
    id: crypto.randomUUID(),
    sessionId,
    senderType: 'ai',
    content: 'From my notes: debits equal credits.',
    tokensUsed: 0,
    costIncrement: '0.0000',
    createdAt: new Date().toISOString(),
    citations: [{ documentId: crypto.randomUUID(), title: 'Bookkeeping basics', chunkIndex: 2 }],
  };
  system.gateway.io.to(`user:${userId}`).emit('message:completed', { sessionId, message: cited });
  await page.locator('.tg-citations li', { hasText: 'Bookkeeping basics — part 3' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-chat.png'), fullPage: true });

  // pause stops the meter; resume starts it again
  await page.getByRole('button', { name: 'Pause' }).click();
  await waitFor(async () => (await badge.textContent()) === 'Paused', WAIT_MS, 'paused');
  assert.ok(await page.getByRole('button', { name: 'Resume' }).isVisible());
  assert.ok(await page.getByRole('button', { name: 'Send' }).isDisabled(), 'no messages while paused');
  const pausedRow = await waitFor(
    () => system.database.db.selectFrom('sessions').select('status').where('id', '=', sessionId).where('status', '=', 'paused').executeTakeFirst(),
    WAIT_MS,
    'the pause to be recorded',
  );
  assert.is(pausedRow.status, 'paused');
  const frozen = await meter.locator('dd').nth(1).textContent();
  await page.getByRole('button', { name: 'Resume' }).click();
  await waitFor(async () => (await badge.textContent()) === 'Active', WAIT_MS, 'resumed');
  await waitFor(async () => (await meter.locator('dd').nth(1).textContent()) !== frozen, WAIT_MS, 'the meter to run again');

  // the end: the summary shows the settled total
  await page.getByRole('button', { name: 'End chat' }).click();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor();
  assert.is(await page.locator('.tg-reason').textContent(), 'You ended the session.');
  const row = await settledSession(userId);
  assert.is(row.end_reason, 'user');
  await waitFor(async () => (await page.locator('.tg-total').textContent()) === `${row.total_cost} credits`, WAIT_MS, 'the settled total');
  assert.is(await page.locator('.tg-summary dd').nth(1).textContent(), String(row.message_count));
  assert.not.ok(await page.getByLabel('Message').isVisible(), 'no composer after the end');

  // 4 stars, by keyboard-reachable radio buttons
  await page.getByRole('radio', { name: '4 stars' }).check();
  await page.getByLabel('Feedback (optional)').fill('Clear and patient.');
  await page.getByRole('button', { name: 'Submit rating' }).click();
  await page.getByText('You rated this session 4 of 5 stars.').waitFor();
  const rated = await system.database.db.selectFrom('sessions').select(['user_rating', 'user_feedback']).where('id', '=', sessionId).executeTakeFirstOrThrow();
  assert.is(rated.user_rating, 4);
  assert.is(rated.user_feedback, 'Clear and patient.');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-summary.png'), fullPage: true });
  assert.equal(problems, []);
});

test('on a phone, a session whose credits run out warns, then ends with the credits-exhausted summary', async () => {
  const userId = await createUser(system, '1.0000');
  const { cloneId } = await createClone(system, '20.0000');
  await nameClone(cloneId, { name: 'Counsel Pricey', bio: 'Expensive advice, by the second.' });
  const { page, problems } = await openPage({ width: 390, height: 844 });

  // a bad token is refused with a message, and the token field stays for another try
  await page.goto(`${system.url}/`);
  await page.getByLabel('Access token').fill('not-a-token');
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('alert').filter({ hasText: 'The access token was refused' }).waitFor();
  assert.ok(await page.getByLabel('Access token').isVisible());

  await signIn(page, userId);
  await page.getByRole('radio', { name: 'Counsel Pricey' }).check();
  await page.getByRole('button', { name: 'Start chat' }).click();
  // 1 credit at 20 per minute lasts 3 s: well under LOW_BALANCE_SECONDS
  await page.locator('.tg-low', { hasText: 'Low balance' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-phone-low.png'), fullPage: true });

  await page.getByRole('heading', { name: 'Session ended' }).waitFor({ timeout: 20_000 });
  assert.is(await page.locator('.tg-reason').textContent(), 'Your credits ran out, so the session ended.');
  const row = await settledSession(userId);
  assert.is(row.end_reason, 'credits_exhausted');
  assert.is(row.total_cost, '1.0000', 'never more than the user had');
  await waitFor(async () => (await page.locator('.tg-total').textContent()) === '1.0000 credits', WAIT_MS, 'the total');
  assert.is(await page.getByRole('region', { name: 'Meter' }).locator('dd').nth(2).textContent(), '0.0000', 'no credits left');
  const width = await page.evaluate('document.documentElement.scrollWidth');
  assert.ok(Number(width) <= 390, `no horizontal scrolling on a phone (scrollWidth ${width})`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-exhausted-phone.png'), fullPage: true });
  assert.equal(problems, []);
});

test('after a dropped connection whose missed events are gone, the widget catches up with session:get and session:history', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.0000');
  await nameClone(cloneId, { name: 'Dr. Reconnect' });
  const { page, problems } = await openPage();
  await signIn(page, userId);
  await page.getByRole('radio', { name: 'Dr. Reconnect' }).check();
  await page.getByRole('button', { name: 'Start chat' }).click();
  await page.getByRole('heading', { name: 'Dr. Reconnect' }).waitFor();
  const sessionId = await sessionOf(userId);

  // the user's other device keeps the chat active and asks something while the page is offline
  const other = await system.connect(userId);
  await page.context().setOffline(true);
  for (const socket of system.gateway.io.of('/').sockets.values()) {
    if (socket.data.userId === userId && socket.id !== other.id) socket.conn.close();
  }
  await page.getByText('Reconnecting…').waitFor();
  const replied = nextEvent(other, 'message:completed', (c) => c.sessionId === sessionId);
  const sent = await request(other, 'message:send', { sessionId, clientMessageId: 'other-device-1', content: 'Asked on my phone' });
  assert.ok(sent.ok);
  await replied;
  // the state kept for connection recovery is gone (as after its 2-minute window): the page must ask
  const sessionKeys = `${system.config.REDIS_PREFIX}:sio:session:*`;
  await waitFor(async () => (await system.redis.keys(sessionKeys)).length > 0, WAIT_MS, 'the recovery state');
  await deleteKeys(system.redis, sessionKeys);
  const asked: string[] = [];
  const record = (socket: { data: { userId: string }; use(fn: (packet: unknown[], next: () => void) => void): void }) => {
    if (socket.data.userId === userId) socket.use((packet, next) => (asked.push(String(packet[0])), next()));
  };
  system.gateway.io.on('connection', record as never);
  await page.context().setOffline(false);

  await page.getByText('Connected').waitFor({ timeout: 20_000 });
  await page.locator('.tg-user', { hasText: 'Asked on my phone' }).waitFor();
  await page.locator('.tg-ai[data-state="complete"]', { hasText: REPLY }).waitFor();
  system.gateway.io.off('connection', record as never);
  assert.equal(asked.slice(0, 2), ['session:get', 'session:history'], 'not recovered: the page asked');
  assert.is(await page.locator('.tg-badge').textContent(), 'Active');
  await page.getByRole('button', { name: 'End chat' }).click();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor();
  other.disconnect();
  assert.equal(problems.filter((problem) => !/ERR_INTERNET_DISCONNECTED|WebSocket connection/.test(problem)), []);
});

test('another site embeds /widget.js with data attributes: it renders in a shadow root, takes its token from data-token-url', async () => {
  const userId = await createUser(system, '50.0000');
  const { cloneId } = await createClone(system, '1.2500');
  await nameClone(cloneId, { name: 'Embedded Expert', bio: XSS });
  const token = await system.token(userId);
  const { page, problems } = await openPage();

  // The host page styles everything loudly; none of it may reach the widget, and none of the widget's may leak out.
  const hostPage = `<!doctype html><html><head><title>Shop</title>
    <style>* { font-family: serif !important; } button { background: rgb(255, 105, 180); }</style></head>
    <body><h1>Our shop</h1><button id="host-button">Host button</button>
    <script src="${system.url}/widget.js" data-gateway="${system.url}" data-clone-id="${cloneId}" data-token-url="/tollgate-token" async></script>
    </body></html>`;
  let tokenRequests = 0;
  host = await serveHost((request, response) => {
    if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(hostPage);
    } else if (request.url === '/tollgate-token') {
      tokenRequests += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    } else {
      response.writeHead(404).end();
    }
  });
  assert.is.not(new URL(host.url).origin, new URL(system.url).origin);
  await page.goto(`${host.url}/`);

  await page.getByRole('radio', { name: 'Embedded Expert' }).waitFor();
  assert.ok(await page.evaluate(() => Boolean(document.querySelector('.tollgate-widget')?.shadowRoot?.querySelector('.tg'))), 'rendered in a shadow root');
  assert.ok(await page.evaluate(() => document.querySelector('.tg') === null), 'nothing of the widget in the light DOM');
  assert.ok(tokenRequests >= 1, 'the token came from data-token-url');
  assert.is(await page.locator('.tg-clone').count(), 1, 'only the data-clone-id clone');
  await page.getByText(XSS).waitFor(); // the bio shows as text
  assert.is(await page.evaluate(() => window.__xss), undefined, 'server text is never parsed as HTML');

  const widgetButton = page.getByRole('button', { name: 'Start chat' });
  const widgetStyle = await widgetButton.evaluate((element) => {
    const style = getComputedStyle(element as unknown as PageElement);
    return { background: style.backgroundColor, font: style.fontFamily };
  });
  assert.is.not(widgetStyle.background, 'rgb(255, 105, 180)', 'host button styles do not reach the widget');
  assert.not.match(widgetStyle.font, /^serif$/);
  const hostStyle = await page.evaluate(() => getComputedStyle(document.querySelector('#host-button')!).backgroundColor);
  assert.is(hostStyle, 'rgb(255, 105, 180)', 'the widget’s styles do not reach the host page');

  await widgetButton.click();
  await page.getByRole('heading', { name: 'Embedded Expert' }).waitFor();
  await page.getByRole('button', { name: 'End chat' }).click();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-embedded.png'), fullPage: true });
  assert.equal(problems, []);
});

/** The clone's voice agent on /agent, holding the session's claim (what the agent process does when dispatched). */
async function agentFor(sessionId: string): Promise<Socket> {
  const agent = await connectAgent(system, 'widget-test');
  const claim = (await agent.timeout(5000).emitWithAck('agent:claim', { sessionId })) as { ok: boolean; claimed?: boolean };
  assert.ok(claim.ok && claim.claimed, 'the agent holds the session');
  return agent;
}

/** A signed LiveKit webhook about the session's room. */
async function roomHook(sessionId: string, event: 'participant_joined' | 'participant_left', identity: string, participantSid: string): Promise<void> {
  assert.is(await postWebhook(system.url, { event, room: `session-${sessionId}`, identity, participantSid, joinedAtMs: Date.now() }), 200);
}

/** What the browser logs about the room it cannot reach (this test has no media server): nothing else is excused. */
const unreachableRoom = (problem: string) => {
  const signalHost = new URL(signal.url).host.replace(/[.]/g, '\\.');
  return (
    new RegExp(`WebSocket connection to 'ws://${signalHost}/rtc`).test(problem) ||
    /console error: Failed to load resource: the server responded with a status of 503/.test(problem)
  );
};

test('a voice call: joins its room with the session’s token, waits for the expert, talks, pauses on silence and on hold, ends', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '6.0000');
  await nameClone(cloneId, { name: 'Dr. Vox' });
  const { page, problems } = await openPage();
  await signIn(page, userId);
  await page.getByRole('radio', { name: 'Dr. Vox' }).check();
  const joinsBefore = signal.joins.length;
  await page.getByRole('button', { name: 'Start voice call' }).click();

  const callState = page.getByRole('region', { name: 'Call' }).locator('.tg-call-state');
  const badge = page.locator('.tg-badge');
  await page.getByRole('heading', { name: 'Dr. Vox' }).waitFor();
  await callState.filter({ hasText: 'Joining the call' }).waitFor();
  assert.is(await badge.textContent(), 'Paused', 'nothing is metered before both are in the room');
  assert.not.ok(await page.getByLabel('Message').isVisible(), 'a call has no text composer');
  const sessionId = await sessionOf(userId);

  // LiveKit's SDK tried to join the session's room as the user, with the token the gateway issued
  const join = await waitFor(() => signal.joins[joinsBefore], WAIT_MS, 'the browser to join the room');
  assert.match(join.path, /^\/rtc/);
  const { payload } = await jwtVerify(join.token, new TextEncoder().encode(TEST_LIVEKIT_SECRET));
  assert.is(payload.sub, userId);
  assert.is((payload.video as { room?: string }).room, `session-${sessionId}`);
  // no media server here: the widget says so and offers to rejoin (with a fresh token)
  await page.getByText('Could not join the call').waitFor();
  await page.getByRole('button', { name: 'Rejoin call' }).click();
  const rejoin = await waitFor(() => signal.joins[joinsBefore + 1], WAIT_MS, 'a second join');
  assert.is((await jwtVerify(rejoin.token, new TextEncoder().encode(TEST_LIVEKIT_SECRET))).payload.sub, userId);

  // LiveKit reports the user in the room: alone, the call waits for the expert, free
  await roomHook(sessionId, 'participant_joined', userId, 'PA_widget_user');
  await callState.filter({ hasText: 'Waiting for Dr. Vox to join the call' }).waitFor();
  assert.match((await callState.textContent()) ?? '', /the call ends and the wait is free/);
  assert.is(await badge.textContent(), 'Paused');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-call-waiting.png'), fullPage: true });

  // the expert's agent comes: a conversation, metered
  const agent = await agentFor(sessionId);
  await roomHook(sessionId, 'participant_joined', `agent-${sessionId}`, 'PA_widget_agent1');
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();
  assert.is(await badge.textContent(), 'Talking');
  const meter = page.getByRole('region', { name: 'Meter' });
  await waitFor(async () => (await meter.locator('dd').nth(1).textContent()) !== '0.0000', WAIT_MS, 'the meter to run');
  // what the user said, heard by the agent: the clone's answer streams into the transcript
  const said = (await agent.timeout(5000).emitWithAck('agent:utterance', { sessionId, clientMessageId: 'widget-voice-1', content: 'What is a ledger?' })) as { ok: boolean };
  assert.ok(said.ok);
  await page.locator('.tg-ai[data-state="complete"] .tg-text', { hasText: REPLY }).waitFor();
  await page.locator('.tg-user[data-state="complete"] .tg-text', { hasText: 'What is a ledger?' }).waitFor();
  assert.equal(await page.locator('.tg-log .tg-who').allTextContents(), ['You', 'Dr. Vox'], 'the transcript: what the user said, then the answer');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-call-talking.png'), fullPage: true });

  // nobody speaks for VOICE_IDLE_MS: paused and told; speech (the agent hears it) resumes
  await callState.filter({ hasText: 'nobody has spoken' }).waitFor({ timeout: VOICE_IDLE_MS + WAIT_MS });
  assert.is(await badge.textContent(), 'Paused');
  assert.not.ok(await page.getByRole('button', { name: 'Resume' }).isVisible(), 'speaking resumes a silent call, not a button');
  assert.ok(((await agent.timeout(5000).emitWithAck('agent:voice-activity', { sessionId })) as { ok: boolean }).ok);
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();

  // the agent drops: the meter stops until another comes
  await roomHook(sessionId, 'participant_left', `agent-${sessionId}`, 'PA_widget_agent1');
  await callState.filter({ hasText: 'Dr. Vox’s voice dropped out' }).waitFor();
  assert.not.ok(await page.getByRole('button', { name: 'Resume' }).isVisible(), 'waiting for the expert resumes by itself');
  await roomHook(sessionId, 'participant_joined', `agent-${sessionId}`, 'PA_widget_agent2');
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();

  // LiveKit reports the person gone (another device, a dropped network): told, and offered a rejoin
  await roomHook(sessionId, 'participant_left', userId, 'PA_widget_user');
  await callState.filter({ hasText: 'You are not in the call' }).waitFor();
  assert.ok(await page.getByRole('button', { name: 'Rejoin call' }).isVisible());
  await roomHook(sessionId, 'participant_joined', userId, 'PA_widget_user2');
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();

  // a reload picks the call up again: its state, its transcript, and another join of its room
  const joinsBeforeReload = signal.joins.length;
  await page.goto(`${system.url}/`);
  await page.getByLabel('Access token').fill(await system.token(userId));
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('heading', { name: 'Dr. Vox' }).waitFor();
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();
  await page.locator('.tg-ai[data-state="complete"] .tg-text', { hasText: REPLY }).waitFor();
  await waitFor(() => signal.joins[joinsBeforeReload], WAIT_MS, 'the restored call to join its room');

  // on hold, and back
  await page.getByRole('button', { name: 'Pause' }).click();
  await callState.filter({ hasText: 'On hold' }).waitFor();
  await page.getByRole('button', { name: 'Resume' }).click();
  await callState.filter({ hasText: 'Talking with Dr. Vox' }).waitFor();

  await page.getByRole('button', { name: 'End call' }).click();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor();
  assert.is(await page.locator('.tg-reason').textContent(), 'You ended the session.');
  assert.not.ok(await page.getByRole('region', { name: 'Call' }).isVisible(), 'the call panel is gone');
  const row = await settledSession(userId);
  assert.is(row.session_type, 'voice');
  assert.ok(Number(row.active_ms) > 0, 'the conversation was charged');
  await waitFor(async () => (await page.locator('.tg-total').textContent()) === `${row.total_cost} credits`, WAIT_MS, 'the settled total');
  agent.disconnect();
  assert.equal(problems.filter((problem) => !unreachableRoom(problem)), []);
});

test('a voice call no agent joins: the widget waits, then says the expert could not join and that nothing was charged', async () => {
  const userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '6.0000');
  await nameClone(cloneId, { name: 'Dr. Absent' });
  const { page, problems } = await openPage({ width: 390, height: 844 });
  await signIn(page, userId);
  await page.getByRole('radio', { name: 'Dr. Absent' }).check();
  await page.getByRole('button', { name: 'Start voice call' }).click();
  await page.getByRole('heading', { name: 'Dr. Absent' }).waitFor();
  const sessionId = await sessionOf(userId);
  await roomHook(sessionId, 'participant_joined', userId, 'PA_widget_alone');
  await page.getByText('Waiting for Dr. Absent to join the call').waitFor();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor({ timeout: 4000 + WAIT_MS });
  assert.is(await page.locator('.tg-reason').textContent(), 'The expert could not join the call, so the session ended. Nothing was charged for the wait.');
  const row = await settledSession(userId);
  assert.is(row.end_reason, 'agent_timeout');
  assert.is(row.total_cost, '0.0000');
  assert.is(await page.locator('.tg-total').textContent(), '0.0000 credits');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-call-no-agent-phone.png'), fullPage: true });
  assert.equal(problems.filter((problem) => !unreachableRoom(problem)), []);
});

test.run();

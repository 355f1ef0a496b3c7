/**
 * SQL and HTML in what people type and upload: a chat message, a rating's feedback, a clone's name and bio, a
 * document's title and text, and a reply that echoes markup. Stored verbatim (the Postgres rows equal the input byte
 * for byte, the tables are all still there) and shown as text, never markup, in Debian's Chromium: the chat widget on
 * the demo page (GET / and /widget.js) and the billing console's session view.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ingestBudget } from '#billing/ingest/ingest-budget.ts';
import { ingestDocument } from '#billing/ingest/ingest-document.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../support/browser.ts';
import { billingAppOf, createClone, createUser, startSystem, waitFor, type TestSystem } from '../support/system.ts';

const WAIT_MS = 15_000;
/** Markup that runs script if it is ever parsed as HTML, and an element that would show if it were. */
const HTML = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b id="injected">bold</b><svg onload="window.__xss=3"></svg>`;
/** SQL that would end, widen or delay a query if it were ever spliced into one. */
const SQL = `'); DROP TABLE messages; -- " OR '1'='1'; SELECT pg_sleep(10); /* \\' ; `;
const MESSAGE = `Bernoulli numbers? ${SQL}${HTML} &amp; &lt;b&gt; ünïcødé ✓ \${7*7}`;
const FEEDBACK = `5 stars ${HTML} ${SQL}thanks`;
const CLONE_NAME = `Dr. <i id="injected-name">Injection</i> ' OR 1=1 --`;
const CLONE_BIO = `${HTML} ${SQL}`;
const DOC_TITLE = `Notes ${HTML.slice(0, 60)} ${SQL.slice(0, 40)}`;
const DOC_TEXT = `The Bernoulli numbers are a sequence of rational numbers. ${SQL}${HTML}`;
const REPLY = `Here is markup for you: ${HTML} and a query: ${SQL}`;

let system: TestSystem;
let billing: FastifyInstance;
let billingUrl = '';
let browser: Browser;
let uploadDir: string;
test.before(async () => {
  system = await startSystem({ openai: { reply: () => REPLY } });
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-injection-'));
  billing = billingAppOf(system, { documents: { uploadDir, maxUploadBytes: 100_000 } });
  await billing.listen({ port: 0, host: '127.0.0.1' });
  billingUrl = `http://127.0.0.1:${(billing.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
test.after(async () => {
  await browser?.close();
  await billing?.close();
  await system?.close();
  if (uploadDir) rmSync(uploadDir, { recursive: true, force: true });
});

/** A new page that records page errors; `window.__xss` would be set by any injected script. */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { page, problems };
}

/**
 * What markup made it into the DOM, through every open shadow root: injected elements, inline handlers, scripts
 * carrying the payload, and whether any of them ran.
 */
function injected(page: Page): Promise<{ elements: string[]; ran: unknown }> {
  return page.evaluate(`(() => {
    const found = [];
    const visit = (root) => {
      for (const element of root.querySelectorAll('*')) {
        const name = element.tagName.toLowerCase();
        if (element.id === 'injected' || element.id === 'injected-name') found.push(name + '#' + element.id);
        if ((name === 'img' || name === 'svg') && [...element.attributes].some((a) => a.name.startsWith('on'))) found.push(name + ' with a handler');
        if (name === 'script' && element.textContent.includes('__xss')) found.push('script');
        if (name === 'img' && element.getAttribute('src') === 'x') found.push('img src=x');
        if (element.shadowRoot) visit(element.shadowRoot);
      }
    };
    visit(document);
    return { elements: found, ran: window.__xss ?? null };
  })()`);
}

const sameBytes = (stored: string | null | undefined, input: string) => Buffer.from(stored ?? '', 'utf8').equals(Buffer.from(input, 'utf8'));

test('a document with markup and SQL in its title and text is stored verbatim', async () => {
  const { cloneId, creatorId } = await createClone(system, '1.0000');
  await system.database.db.updateTable('clones').set({ name: CLONE_NAME, bio: CLONE_BIO }).where('id', '=', cloneId).execute();
  const boundary = `----injection${randomUUID()}`;
  const payload = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n${DOC_TITLE}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n${DOC_TEXT}\r\n--${boundary}--\r\n`,
  );
  const response = await fetch(`${billingUrl}/api/clones/${cloneId}/documents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await system.token(creatorId)}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: payload,
  });
  assert.is(response.status, 202, await response.clone().text());
  const { document } = (await response.json()) as { document: { id: string } };
  const row = await system.database.db.selectFrom('documents').selectAll().where('id', '=', document.id).executeTakeFirstOrThrow();
  assert.ok(sameBytes(row.title, DOC_TITLE), `title stored as ${JSON.stringify(row.title)}`);
  assert.ok(readFileSync(path.resolve(uploadDir, row.file_path)).equals(Buffer.from(DOC_TEXT)), 'the file is kept as uploaded');
  const outcome = await ingestDocument(system.database.db, document.id, {
    embedder: createEmbedder(system.config),
    uploadDir,
    maxUploadBytes: 100_000,
    chunkTokens: 400,
    overlapTokens: 20,
    budget: ingestBudget(system.config),
  });
  assert.is(outcome.status, 'completed');
  const chunks = await system.database.db.selectFrom('document_chunks').select('content').where('document_id', '=', document.id).execute();
  assert.is(chunks.length, 1);
  assert.ok(sameBytes(chunks[0]!.content, DOC_TEXT), `chunk stored as ${JSON.stringify(chunks[0]!.content)}`);
  const clone = await system.database.db.selectFrom('clones').select(['name', 'bio']).where('id', '=', cloneId).executeTakeFirstOrThrow();
  assert.ok(sameBytes(clone.name, CLONE_NAME) && sameBytes(clone.bio, CLONE_BIO));
  shared.cloneId = cloneId;
  shared.documentId = document.id;
});

const shared = { cloneId: '', documentId: '', sessionId: '', userId: '' };

test('the chat widget shows the clone, the message, the reply and its source as text; the rows equal the input', async () => {
  const userId = (shared.userId = await createUser(system, '100.0000'));
  const { page, problems } = await openPage();
  await page.goto(`${system.url}/`);
  await page.getByLabel('Access token').fill(await system.token(userId));
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('heading', { name: 'Choose an expert' }).waitFor();

  // the clone's name and bio, as written
  const choice = page.getByRole('radio', { name: CLONE_NAME });
  await choice.waitFor();
  assert.is(await page.locator('.tg-clone-bio').first().textContent(), CLONE_BIO);
  await choice.check();
  await page.getByRole('button', { name: 'Start chat' }).click();
  await page.getByRole('heading', { name: CLONE_NAME }).waitFor();

  await page.getByLabel('Message').fill(MESSAGE);
  await page.getByLabel('Message').press('Enter');
  await page.locator('.tg-user[data-state="complete"]').waitFor();
  await page.locator('.tg-ai[data-state="complete"]').waitFor();
  assert.is(await page.locator('.tg-user .tg-text').textContent(), MESSAGE);
  assert.is(await page.locator('.tg-ai .tg-text').textContent(), REPLY);
  assert.is(await page.locator('.tg-citations li').first().textContent(), `${DOC_TITLE} — part 1`);

  await page.getByRole('button', { name: 'End chat' }).click();
  await page.getByRole('heading', { name: 'Session ended' }).waitFor();
  await page.getByRole('radio', { name: '5 stars' }).check();
  await page.getByLabel('Feedback (optional)').fill(FEEDBACK);
  await page.getByRole('button', { name: 'Submit rating' }).click();
  await page.getByText('You rated this session 5 of 5 stars.').waitFor();

  assert.equal(await injected(page), { elements: [], ran: null });
  assert.equal(problems, []);

  // stored byte for byte, and every table still there
  const session = await waitFor(
    () => system.database.db.selectFrom('sessions').selectAll().where('user_id', '=', userId).where('settled_at', 'is not', null).executeTakeFirst(),
    WAIT_MS,
    'the settled session',
  );
  shared.sessionId = session.id;
  const messages = await system.database.db.selectFrom('messages').selectAll().where('session_id', '=', session.id).orderBy('created_at').execute();
  assert.equal(messages.map((m) => m.sender_type), ['user', 'ai']);
  assert.ok(sameBytes(messages[0]!.content, MESSAGE), `stored ${JSON.stringify(messages[0]!.content)}`);
  assert.ok(sameBytes(messages[1]!.content, REPLY), `stored ${JSON.stringify(messages[1]!.content)}`);
  assert.is((messages[1]!.citations as Array<{ title: string }>)[0]?.title, DOC_TITLE);
  assert.ok(sameBytes(session.user_feedback, FEEDBACK), `stored ${JSON.stringify(session.user_feedback)}`);
  const tables = await sql<{ n: number }>`select count(*)::int as n from pg_tables where schemaname = 'public' and tablename in ('messages', 'sessions', 'documents', 'user_profiles')`.execute(system.database.db);
  assert.is(tables.rows[0]!.n, 4);
  await page.context().close();
});

test('the billing console shows the session\'s clone and messages as text', async () => {
  assert.ok(shared.sessionId, 'the widget test ran');
  const adminId = await createUser(system);
  await system.database.db.updateTable('user_profiles').set({ role: 'admin' }).where('id', '=', adminId).execute();
  const { page, problems } = await openPage();
  await page.goto(`${billingUrl}/`);
  await page.waitForSelector('html[data-ready="true"]');
  await page.fill('#token', await system.token(adminId));
  await page.keyboard.press('Enter');
  await page.waitForSelector('#sessions-table tbody tr[data-session-id]');
  await page.goto(`${billingUrl}/#/sessions/${shared.sessionId}`);
  await page.waitForFunction(`(() => { const body = document.querySelector('#session-body'); return body && !body.hidden && !body.hasAttribute('aria-busy'); })()`);

  const contents = await page.locator('#messages-table tbody td.content').allTextContents();
  assert.equal(contents, [MESSAGE, REPLY]);
  assert.ok((await page.locator('#session-summary').textContent())?.includes(CLONE_NAME), 'the clone name as text');
  assert.equal(await injected(page), { elements: [], ran: null });
  assert.equal(problems, []);
  await page.context().close();
});

test.run();

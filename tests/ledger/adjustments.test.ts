import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { parseMoney, parseRatio } from '#shared/money/money.ts';
import { adjustmentLedgerEntries, adjustmentSplit } from '#billing/ledger/adjustment-entries.ts';
import { createParties, sessionHeader, stateJob, type Parties, applySessionState } from '../billing/fixtures.ts';
import { createUser, settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;
const refreshed: string[] = [];

test.before(async () => {
  h = await startLedgerApp({ onBalanceChanged: async (userId) => void refreshed.push(userId) });
});
test.after(async () => {
  await h?.close();
});

function post(body: unknown, token?: string) {
  return h.request({ method: 'POST', url: '/api/ledger/adjustments', payload: body as object, ...(token ? { token } : {}) });
}

async function state(parties: Parties) {
  const db = h.database.db;
  const user = await db.selectFrom('user_profiles').select(['credits_remaining', 'total_spent']).where('id', '=', parties.userId).executeTakeFirstOrThrow();
  const clone = await db.selectFrom('clones').select(['total_earnings']).where('id', '=', parties.cloneId).executeTakeFirstOrThrow();
  return { credits: user.credits_remaining, spent: user.total_spent, earnings: clone.total_earnings };
}

async function countAdjustments(key: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_adjustments WHERE idempotency_key = ${key}`.execute(h.database.db);
  return rows[0]!.n;
}

test('the entries of an adjustment sum to zero for either sign and any amount', () => {
  const fee = parseRatio('0.175');
  for (const text of ['0.0001', '0.0003', '1.0000', '15.0003', '-0.0001', '-2.5005', '-99.9999']) {
    const amount = parseMoney(text);
    const split = adjustmentSplit(amount, fee);
    assert.is(split.user + split.creator + split.platform, 0n, text);
    assert.is(split.user, amount);
    const entries = adjustmentLedgerEntries({ adjustmentId: 'a', sessionId: 's', userId: 'u', creatorId: 'c' }, split);
    assert.equal(entries.map((e) => [e.account_kind, e.account_id, e.kind]), [['user', 'u', 'adjustment'], ['creator', 'c', 'adjustment'], ['platform', null, 'adjustment']]);
  }
  assert.equal(adjustmentSplit(parseMoney('5.0000'), parseRatio('0.20')), { user: 50_000n, creator: -40_000n, platform: -10_000n });
  assert.equal(adjustmentSplit(parseMoney('-5.0000'), parseRatio('0.20')), { user: -50_000n, creator: 40_000n, platform: 10_000n });
});

test('a refund: 201, three entries summing to zero, credits up, total spent and clone earnings down', async () => {
  const parties = await createParties(h.database.db, { credits: '100.0000' });
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  assert.equal(await state(parties), { credits: '85.0000', spent: '15.0000', earnings: '12.0000' });
  refreshed.length = 0;
  const key = randomUUID();
  const response = await post({ idempotencyKey: key, sessionId, amount: '5.0003', reason: 'audio dropped for 3 minutes' });
  assert.is(response.statusCode, 201, response.body);
  const { adjustment, entries } = response.json();
  assert.equal({ ...adjustment, id: undefined, createdAt: undefined }, {
    id: undefined,
    sessionId,
    userId: parties.userId,
    creatorId: parties.creatorId,
    amount: '5.0003',
    reason: 'audio dropped for 3 minutes',
    authorId: h.adminId,
    createdAt: undefined,
  });
  // fee = 5.0003 × 0.20 = 1.00006 → 1.0001; earning 4.0002
  assert.equal(
    entries.map((e: { kind: string; accountKind: string; accountId: string | null; amount: string; adjustmentId: string }) => [
      e.kind, e.accountKind, e.accountId, e.amount, e.adjustmentId === adjustment.id,
    ]),
    [
      ['adjustment', 'user', parties.userId, '5.0003', true],
      ['adjustment', 'creator', parties.creatorId, '-4.0002', true],
      ['adjustment', 'platform', null, '-1.0001', true],
    ],
  );
  assert.equal(await state(parties), { credits: '90.0003', spent: '9.9997', earnings: '7.9998' });
  assert.equal(refreshed, [parties.userId], 'the live balance is refreshed once');

  const row = await h.database.db.selectFrom('ledger_adjustments').selectAll().where('id', '=', adjustment.id).executeTakeFirstOrThrow();
  assert.is(row.idempotency_key, key);
  assert.match(row.request_hash, /^[0-9a-f]{64}$/);
  assert.is(row.author_id, h.adminId);

  const detail = await h.getJson(`/api/ledger/sessions/${sessionId}`);
  assert.is(detail.ledger.length, 6);
  assert.equal(detail.adjustments, [{ id: adjustment.id, amount: '5.0003', reason: 'audio dropped for 3 minutes', authorId: h.adminId, createdAt: adjustment.createdAt }]);
  assert.is(detail.check.ledgerSum, '0.0000');
  assert.is(detail.check.balanced, true);
  assert.is(detail.check.charged, '15.0000', 'the check is about the settlement; the adjustment is listed beside it');

  const reconciliation = await h.getJson('/api/ledger/reconciliation');
  assert.is(reconciliation.ok, true, JSON.stringify(reconciliation));
});

test('the same key with the same parameters answers 200 with the first result and changes nothing', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  const body = { idempotencyKey: `refund-${randomUUID()}`, sessionId, amount: '2.5', reason: 'goodwill' };
  const first = await post(body);
  assert.is(first.statusCode, 201);
  const before = await state(parties);
  refreshed.length = 0;
  const again = await post({ ...body, amount: '2.5000', sessionId: sessionId.toUpperCase() });
  assert.is(again.statusCode, 200, again.body);
  assert.equal(again.json(), first.json());
  assert.equal(await state(parties), before);
  assert.is(await countAdjustments(body.idempotencyKey), 1);
  assert.equal(refreshed, [], 'a replay refreshes nothing');
  // another admin replaying the key gets the same first result
  const otherAdmin = await createUser(h.database, 'admin');
  const third = await post(body, await h.token(otherAdmin));
  assert.is(third.statusCode, 200);
  assert.is(third.json().adjustment.authorId, h.adminId);
});

test('the same key with other parameters is 409 idempotency_conflict and changes nothing', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  const other = await settledSession(h.database, h.config, parties, {});
  const body = { idempotencyKey: randomUUID(), sessionId, amount: '1.0000', reason: 'goodwill' };
  assert.is((await post(body)).statusCode, 201);
  const before = await state(parties);
  for (const changed of [{ amount: '1.0001' }, { reason: 'Goodwill' }, { sessionId: other.sessionId }, { amount: '-1.0000' }]) {
    const response = await post({ ...body, ...changed });
    assert.is(response.statusCode, 409, JSON.stringify(changed));
    assert.is(response.json().error.code, 'idempotency_conflict');
  }
  assert.equal(await state(parties), before);
  assert.is(await countAdjustments(body.idempotencyKey), 1);
});

test('concurrent duplicates make one adjustment; all answer its result', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  const body = { idempotencyKey: randomUUID(), sessionId, amount: '0.7500', reason: 'double click' };
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const address = h.app.server.address() as { port: number };
  const responses = await Promise.all(
    Array.from({ length: 12 }, () =>
      fetch(`http://127.0.0.1:${address.port}/api/ledger/adjustments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { adjustment: { id: string } } })),
    ),
  );
  assert.equal(responses.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
  const ids = new Set(responses.map((r) => r.body.adjustment.id));
  assert.is(ids.size, 1);
  assert.is(await countAdjustments(body.idempotencyKey), 1);
  assert.equal(await state(parties), { credits: '85.7500', spent: '14.2500', earnings: '11.4000' });
});

test('concurrent different adjustments of one session never refund more than was paid', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  const responses = await Promise.all(
    Array.from({ length: 8 }, (_, i) => post({ idempotencyKey: randomUUID(), sessionId, amount: '4.0000', reason: `refund ${i}` })),
  );
  const statuses = responses.map((r) => r.statusCode).sort();
  assert.equal(statuses, [201, 201, 201, 422, 422, 422, 422, 422], 'three of 4.0000 fit in 15.0000');
  assert.equal(await state(parties), { credits: '97.0000', spent: '3.0000', earnings: '2.4000' });
});

test('refunds may not exceed the charge net of earlier refunds: 422 invalid_state', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  const tooMuch = await post({ idempotencyKey: randomUUID(), sessionId, amount: '15.0001', reason: 'x' });
  assert.is(tooMuch.statusCode, 422);
  assert.is(tooMuch.json().error.code, 'invalid_state');
  assert.is((await post({ idempotencyKey: randomUUID(), sessionId, amount: '10.0000', reason: 'x' })).statusCode, 201);
  const rest = await post({ idempotencyKey: randomUUID(), sessionId, amount: '5.0001', reason: 'x' });
  assert.is(rest.statusCode, 422);
  // an extra charge raises what may be refunded
  assert.is((await post({ idempotencyKey: randomUUID(), sessionId, amount: '-1.0000', reason: 'x' })).statusCode, 201);
  assert.is((await post({ idempotencyKey: randomUUID(), sessionId, amount: '6.0000', reason: 'all of it' })).statusCode, 201);
  assert.equal(await state(parties), { credits: '100.0000', spent: '0.0000', earnings: '0.0000' });
  assert.is((await post({ idempotencyKey: randomUUID(), sessionId, amount: '0.0001', reason: 'x' })).statusCode, 422);
  const reconciliation = await h.getJson('/api/ledger/reconciliation');
  assert.is(reconciliation.ok, true, JSON.stringify(reconciliation));
});

test('an extra charge takes credits and adds to spend and earnings, but never below zero credits: 422 insufficient_credits', async () => {
  const parties = await createParties(h.database.db, { credits: '20.0000' });
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  assert.equal(await state(parties), { credits: '5.0000', spent: '15.0000', earnings: '12.0000' });
  const tooMuch = await post({ idempotencyKey: randomUUID(), sessionId, amount: '-5.0001', reason: 'missed minute' });
  assert.is(tooMuch.statusCode, 422);
  assert.is(tooMuch.json().error.code, 'insufficient_credits');
  const ok = await post({ idempotencyKey: randomUUID(), sessionId, amount: '-5', reason: 'missed minutes' });
  assert.is(ok.statusCode, 201, ok.body);
  assert.equal(
    ok.json().entries.map((e: { amount: string }) => e.amount),
    ['-5.0000', '4.0000', '1.0000'],
  );
  assert.equal(await state(parties), { credits: '0.0000', spent: '20.0000', earnings: '16.0000' });
  const reconciliation = await h.getJson('/api/ledger/reconciliation');
  assert.is(reconciliation.ok, true);
});

test('a session not settled yet cannot be adjusted (422 invalid_state); an unknown one is 404', async () => {
  const parties = await createParties(h.database.db);
  const header = sessionHeader(parties);
  await applySessionState(h.database.db, stateJob(header, { status: 'active', version: 1 }));
  const open = await post({ idempotencyKey: randomUUID(), sessionId: header.sessionId, amount: '1', reason: 'x' });
  assert.is(open.statusCode, 422);
  assert.is(open.json().error.code, 'invalid_state');
  const unknown = await post({ idempotencyKey: randomUUID(), sessionId: randomUUID(), amount: '1', reason: 'x' });
  assert.is(unknown.statusCode, 404);
  assert.is(unknown.json().error.code, 'not_found');
});

test('adjustment bodies are validated: 400 invalid_payload', async () => {
  const sessionId = randomUUID();
  const valid = { idempotencyKey: 'k', sessionId, amount: '1.0000', reason: 'r' };
  const bad: object[] = [
    { ...valid, idempotencyKey: '' },
    { ...valid, idempotencyKey: 'k'.repeat(101) },
    { ...valid, sessionId: 'nope' },
    { ...valid, amount: '0' },
    { ...valid, amount: '-0.0000' },
    { ...valid, amount: '1.00001' },
    { ...valid, amount: '1e3' },
    { ...valid, amount: 1 },
    { ...valid, amount: '12345678901.0000' },
    { ...valid, reason: '' },
    { ...valid, reason: '   ' },
    { ...valid, reason: 'r'.repeat(501) },
    { ...valid, extra: true },
    { sessionId, amount: '1', reason: 'r' },
  ];
  for (const body of bad) {
    const response = await post(body);
    assert.is(response.statusCode, 400, JSON.stringify(body));
    assert.is(response.json().error.code, 'invalid_payload');
  }
  const big = await post({ ...valid, reason: 'r'.repeat(20_000) });
  assert.is(big.statusCode, 413);
  assert.is(big.json().error.code, 'invalid_payload');
});

test('ledger entries, adjustments and session events are append-only', async () => {
  const parties = await createParties(h.database.db);
  const { sessionId } = await settledSession(h.database, h.config, parties, {});
  assert.is((await post({ idempotencyKey: randomUUID(), sessionId, amount: '1', reason: 'x' })).statusCode, 201);
  const refused = async (statement: ReturnType<typeof sql>) => {
    try {
      await statement.execute(h.database.db);
    } catch (error) {
      assert.is((error as { code?: string }).code, '42501');
      assert.match((error as Error).message, /append-only/);
      return;
    }
    assert.unreachable(`not refused: ${statement.compile(h.database.db).sql}`);
  };
  await refused(sql`UPDATE ledger_entries SET amount = 0 WHERE session_id = ${sessionId}`);
  await refused(sql`DELETE FROM ledger_entries WHERE session_id = ${sessionId}`);
  await refused(sql`UPDATE ledger_adjustments SET amount = 2 WHERE session_id = ${sessionId}`);
  await refused(sql`DELETE FROM ledger_adjustments WHERE session_id = ${sessionId}`);
  await refused(sql`UPDATE session_events SET at = now() WHERE session_id = ${sessionId}`);
  await refused(sql`DELETE FROM session_events WHERE session_id = ${sessionId}`);
});

test.run();

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createParties } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

// POST /api/users/:id/forget: billing staff delete a person; the profile is anonymised and every money record stays.

let h: LedgerHarness;
test.before(async () => {
  h = await startLedgerApp();
});
test.after(async () => {
  await h?.close();
});

async function ledgerOf(userId: string) {
  const { rows } = await sql<{ session_id: string; kind: string; amount: string }>`
    SELECT session_id, kind, amount FROM ledger_entries
    WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ${userId}) ORDER BY session_id, kind
  `.execute(h.database.db);
  return rows;
}

test('an admin forgets a person: profile anonymised, ledger, totals and message costs unchanged, the reconciliation still clean', async () => {
  const parties = await createParties(h.database.db);
  await h.database.db.updateTable('user_profiles').set({ full_name: 'Jane Doe', avatar_url: 'https://example.com/j.png' }).where('id', '=', parties.userId).execute();
  const session = await settledSession(h.database, h.config, parties, { aiCosts: ['0.0150'] });
  const ledgerBefore = await ledgerOf(parties.userId);
  const costsBefore = await h.database.db.selectFrom('messages').select(['cost_increment', 'tokens_used']).where('session_id', '=', session.sessionId).execute();

  const response = await h.request({ method: 'POST', url: `/api/users/${parties.userId}/forget` });
  assert.is(response.statusCode, 200, response.body);
  const { user } = response.json() as { user: { id: string; deletedAt: string } };
  assert.is(user.id, parties.userId);

  const profile = await h.database.db.selectFrom('user_profiles').selectAll().where('id', '=', parties.userId).executeTakeFirstOrThrow();
  assert.is(profile.email, `deleted-${parties.userId}@deleted.invalid`);
  assert.is(profile.full_name, null);
  assert.is(profile.avatar_url, null);
  assert.is(new Date(profile.deleted_at!).toISOString(), user.deletedAt);
  assert.equal(await ledgerOf(parties.userId), ledgerBefore);
  const stored = await h.database.db.selectFrom('sessions').select('total_cost').where('id', '=', session.sessionId).executeTakeFirstOrThrow();
  assert.is(stored.total_cost, session.totalCost);
  const messages = await h.database.db.selectFrom('messages').select(['content', 'cost_increment', 'tokens_used']).where('session_id', '=', session.sessionId).execute();
  assert.equal(messages.map((m) => ({ cost_increment: m.cost_increment, tokens_used: m.tokens_used })), costsBefore);
  assert.ok(messages.every((m) => m.content === ''));
  // the staff's view of the money is unchanged: the session and its ledger reconcile as before
  const detail = await h.getJson(`/api/ledger/sessions/${session.sessionId}`);
  assert.is(detail.session.totalCost, session.totalCost);
  const reconciliation = await h.getJson('/api/ledger/reconciliation?from=2025-03-01T00:00:00.000Z&to=2025-03-02T00:00:00.000Z');
  assert.is(reconciliation.totals.sessions, 1);
  assert.equal(reconciliation.unbalancedSessions, []);
  assert.equal(reconciliation.messageCountMismatches, []);
  assert.equal(reconciliation.balanceMismatches.filter((m: { userId: string }) => m.userId === parties.userId), []);

  // again: the same answer, nothing changes
  const again = await h.request({ method: 'POST', url: `/api/users/${parties.userId}/forget` });
  assert.is(again.statusCode, 200);
  assert.equal(again.json(), { user });
});

test('an unknown person is 404; a forgotten admin is no longer an admin', async () => {
  const unknown = await h.request({ method: 'POST', url: `/api/users/${randomUUID()}/forget` });
  assert.is(unknown.statusCode, 404);
  assert.is(unknown.json().error.code, 'not_found');
  const bad = await h.request({ method: 'POST', url: '/api/users/not-a-uuid/forget' });
  assert.is(bad.statusCode, 400);

  const otherAdmin = randomUUID();
  await h.database.db.insertInto('user_profiles').values({ id: otherAdmin, email: `admin-${otherAdmin}@test.local`, role: 'admin' }).execute();
  const token = await h.token(otherAdmin);
  assert.is((await h.request({ method: 'GET', url: '/api/ledger/sessions', token })).statusCode, 200);
  assert.is((await h.request({ method: 'POST', url: `/api/users/${otherAdmin}/forget` })).statusCode, 200);
  const after = await h.request({ method: 'GET', url: '/api/ledger/sessions', token });
  assert.is(after.statusCode, 401);
});

test.run();

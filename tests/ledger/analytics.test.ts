import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createParties, type Parties } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;
let a: Parties;
let b: Parties;

test.before(async () => {
  h = await startLedgerApp();
  a = await createParties(h.database.db, { credits: '1000.0000', averageRating: '4.25' });
  b = await createParties(h.database.db, { credits: '1000.0000', creatorId: a.creatorId });
  await settledSession(h.database, h.config, a, { start: '2025-03-01T10:00:00.000Z', aiCosts: ['0.0100'] });
  await settledSession(h.database, h.config, a, { start: '2025-03-01T11:00:00.000Z' });
  await settledSession(h.database, h.config, a, { start: '2025-03-02T10:00:00.000Z' });
  await settledSession(h.database, h.config, b, { start: '2025-03-03T10:00:00.000Z', rate: '0.3333' });
});
test.after(async () => {
  await h?.close();
});

test('creator analytics: a row per creator, clone and day, newest first, money exact', async () => {
  const { rows } = await h.getJson('/api/analytics/creators');
  const cloneName = async (id: string) =>
    (await h.database.db.selectFrom('clones').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name;
  assert.equal(rows, [
    {
      date: '2025-03-03',
      creatorId: a.creatorId,
      cloneId: b.cloneId,
      cloneName: await cloneName(b.cloneId),
      totalEarnings: '2.6664',
      sessionsCount: 1,
      averageRating: '4.50',
      userRetentionRate: rows[0].userRetentionRate,
    },
    {
      date: '2025-03-02',
      creatorId: a.creatorId,
      cloneId: a.cloneId,
      cloneName: await cloneName(a.cloneId),
      totalEarnings: '12.0000',
      sessionsCount: 1,
      averageRating: '4.25',
      userRetentionRate: rows[1].userRetentionRate,
    },
    {
      date: '2025-03-01',
      creatorId: a.creatorId,
      cloneId: a.cloneId,
      cloneName: await cloneName(a.cloneId),
      totalEarnings: '24.0080',
      sessionsCount: 2,
      averageRating: '4.25',
      userRetentionRate: rows[2].userRetentionRate,
    },
  ]);
  for (const row of rows) assert.match(row.userRetentionRate, /^[01]\.\d{4}$/);
});

test('creator analytics filter by date (to exclusive), creator and clone', async () => {
  const dates = async (query: string) => (await h.getJson(`/api/analytics/creators?${query}`)).rows.map((r: { date: string }) => r.date);
  assert.equal(await dates('from=2025-03-02'), ['2025-03-03', '2025-03-02']);
  assert.equal(await dates('to=2025-03-02'), ['2025-03-01']);
  assert.equal(await dates('from=2025-03-02&to=2025-03-03'), ['2025-03-02']);
  assert.equal(await dates(`cloneId=${b.cloneId}`), ['2025-03-03']);
  assert.equal(await dates(`creatorId=${a.creatorId}&cloneId=${a.cloneId}`), ['2025-03-02', '2025-03-01']);
  assert.equal(await dates('creatorId=00000000-0000-4000-8000-000000000000'), []);
});

test('user analytics: a row per user and day, newest first, filtered by date and user', async () => {
  const { rows } = await h.getJson(`/api/analytics/users?userId=${a.userId}`);
  assert.equal(rows, [
    { date: '2025-03-02', userId: a.userId, sessionsCount: 1, messagesSent: 0, totalDurationMinutes: 10, totalSpent: '15.0000', documentsUploaded: 0 },
    { date: '2025-03-01', userId: a.userId, sessionsCount: 2, messagesSent: 0, totalDurationMinutes: 20, totalSpent: '30.0100', documentsUploaded: 0 },
  ]);
  const ranged = await h.getJson('/api/analytics/users?from=2025-03-02&to=2025-03-04');
  assert.equal(ranged.rows.map((r: { date: string; userId: string }) => [r.date, r.userId]), [
    ['2025-03-03', b.userId],
    ['2025-03-02', a.userId],
  ]);
});

test.run();

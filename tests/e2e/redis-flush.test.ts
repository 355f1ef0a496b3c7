import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { parseMoney } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import { createClone, createUser, request, startCluster, waitFor, type Cluster } from '../support/processes.ts';
import { startInRoom } from '../support/system.ts';
import { startRedisServer, type RedisServer } from '../../scripts/lib/private-redis.ts';

// A private redis-server, so FLUSHALL is real and harms nobody else.
let redisServer: RedisServer;
let cluster: Cluster;
test.before(async () => {
  redisServer = await startRedisServer();
  cluster = await startCluster({ env: { REDIS_URL: redisServer.url, CHECKPOINT_MS: '300', RECONCILE_MS: '1000', MIN_START_SECONDS: '0' } });
});
test.after(async () => {
  await cluster?.close();
  await redisServer?.close();
});

test('FLUSHALL mid-session: the reconciler settles the session at its last checkpoint with reason state_lost', async () => {
  const gateway = await cluster.startGateway('gateway');
  await cluster.startBilling('billing');
  const db = cluster.database.db;
  const userId = await createUser(db, '20.0000');
  const { cloneId } = await createClone(db, '6.0000');
  const client = await cluster.connect(gateway, userId);
  const startedAt = Date.now();
  const started = await startInRoom(gateway, client, { cloneId, type: 'voice' });
  if (!started.ok) throw new Error(JSON.stringify(started));
  const sessionId = started.session.id;
  await waitFor(async () => {
    const row = await db.selectFrom('sessions').select('active_ms').where('id', '=', sessionId).executeTakeFirst();
    return row !== undefined && Number(row.active_ms) >= 900;
  }, 10_000, 'checkpoints in Postgres');
  await cluster.redis.flushall();
  const flushedAt = Date.now();

  const row = await waitFor(
    () => db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(),
    15_000,
    'the reconciler to settle the session',
  );
  assert.is(row.end_reason, 'state_lost');
  assert.is(row.status, 'ended');
  const activeMs = Number(row.active_ms);
  assert.ok(activeMs >= 900 && activeMs <= flushedAt - startedAt, `charged ${activeMs} ms, never past the flush`);
  assert.is(parseMoney(row.total_cost), timeCost(parseMoney('6.0000'), activeMs));
  const ledger = await sql<{ total: string; n: number }>`select sum(amount)::text as total, count(*)::int as n from ledger_entries where session_id = ${sessionId}`.execute(db);
  assert.is(ledger.rows[0]!.n, 3);
  assert.is(parseMoney(ledger.rows[0]!.total), 0n);
  const user = await db.selectFrom('user_profiles').select('credits_remaining').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.is(parseMoney(user.credits_remaining), parseMoney('20.0000') - parseMoney(row.total_cost));

  // the system carries on from Postgres: a new session starts with the settled balance
  const next = await request(client, 'session:start', { cloneId, type: 'chat' });
  assert.ok(next.ok, JSON.stringify(next));
  client.disconnect();
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomInt } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { BILLING_QUEUE } from '#shared/contract/billing-jobs.ts';
import { formatMoney, parseMoney } from '#shared/money/money.ts';
import { billingQueuePrefix, BILLING_QUEUE_PARTITIONS } from '#shared/live-state/keys.ts';
import {
  createClone,
  createUser,
  nextEvent,
  request,
  startCluster,
  waitFor,
  type Cluster,
  type ProcessHandle,
  type TestClient,
} from '../support/processes.ts';
import { startInRoom } from '../support/system.ts';
import { seededRandom } from '../../scripts/lib/seeded-random.ts';

// SIGKILL the billing worker while it settles — once provably inside a settlement transaction (blocked on a user's
// row lock), then at seeded random instants — and check that every session is settled exactly once afterwards.

const SEED = process.env.SEED ? Number(process.env.SEED) : randomInt(2 ** 31);
/** BILLING_CONCURRENCY of the workers (the default, stated so the blocking condition below can use it). */
const CONCURRENCY = 8;
/** A killed worker's jobs come back after their lock expires (30 s) and a stalled check (every 30 s) sees it. */
const SETTLE_TIMEOUT_MS = 150_000;

const draws = seededRandom(SEED);
const random = draws.next;
const between = draws.between;

interface TrackedSession {
  id: string;
  userId: string;
  cloneId: string;
  /** The cost `session:end` acknowledged. */
  ackCost?: string;
  /** Ids of acknowledged user messages and completed AI replies. */
  messageIds: Set<string>;
}

let cluster: Cluster;
let gateway: ProcessHandle;
let billing: ProcessHandle;
let lockClient: pg.Client | undefined;
const clones: string[] = [];
const initialCredits = new Map<string, string>();
const sessions: TrackedSession[] = [];
let kills = 0;

/** What a harness error or a failed assertion should show: the tails of the processes' output. */
function outputs(): string {
  return [gateway, billing]
    .filter((p): p is ProcessHandle => p !== undefined)
    .map((p) => `--- ${p.name} ---\n${p.output().slice(-3000)}`)
    .join('\n');
}

/** `waiting`, failing with the processes' output as it is when the wait fails (plus `context()` if given). */
async function withOutput<T>(waiting: Promise<T>, context: () => Promise<string> = async () => ''): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    throw new Error(`${(error as Error).message}${await context()}\n${outputs()}`, { cause: error });
  }
}

test.before(async () => {
  console.log(`billing-crash: SEED=${SEED}`);
  cluster = await startCluster({ env: { BILLING_CONCURRENCY: String(CONCURRENCY) } });
  gateway = await cluster.startGateway('gateway');
  billing = await cluster.startBilling('billing-1');
  for (const rate of ['6.0000', '4.5000', '7.3333']) clones.push((await createClone(cluster.database.db, rate)).cloneId);
});

test.after(async () => {
  await lockClient?.end().catch(() => undefined);
  await cluster?.close();
});

/**
 * Users with `perUser()` open sessions each (chat or voice, on the clones), each with one or two messages answered
 * by the offline responder and at least a second of metered time. Returns the users' connected clients.
 */
async function openSessions(userCount: number, perUser: () => number): Promise<Map<string, TestClient>> {
  const clients = new Map<string, TestClient>();
  await Promise.all(
    Array.from({ length: userCount }, async () => {
      const credits = formatMoney(parseMoney('40.0000') + BigInt(between(0, 99_999)));
      const userId = await createUser(cluster.database.db, credits);
      initialCredits.set(userId, credits);
      const client = await cluster.connect(gateway, userId);
      clients.set(userId, client);
      const mine: TrackedSession[] = [];
      client.on('message:completed', ({ sessionId, message }) => mine.find((s) => s.id === sessionId)?.messageIds.add(message.id));
      const count = perUser();
      for (let i = 0; i < count; i++) {
        const started = await startInRoom(gateway, client, {
          cloneId: clones[between(0, clones.length - 1)]!,
          type: random() < 0.5 ? 'chat' : 'voice',
        });
        assert.ok(started.ok, JSON.stringify(started));
        const session: TrackedSession = { id: started.session.id, userId, cloneId: started.session.cloneId, messageIds: new Set() };
        mine.push(session);
        sessions.push(session);
      }
      let sent = 0;
      for (const session of mine) {
        const messages = between(1, 2);
        for (let m = 0; m < messages; m++, sent++) {
          const sent = await request(client, 'message:send', { sessionId: session.id, clientMessageId: `m${m}`, content: `question ${m}` });
          assert.ok(sent.ok, JSON.stringify(sent));
          session.messageIds.add(sent.message.id);
        }
      }
      // Every reply answered (one per user message) and at least a second of time on every session.
      await waitFor(() => mine.reduce((n, s) => n + s.messageIds.size, 0) === 2 * sent, 15_000, 'the clone replies');
      await Promise.all(
        mine.map((s) => nextEvent(client, 'meter:tick', (tick) => tick.sessionId === s.id && tick.activeSeconds >= 1, 10_000)),
      );
    }),
  );
  return clients;
}

async function endSessions(clients: Map<string, TestClient>, batch: TrackedSession[]): Promise<void> {
  await Promise.all(
    batch.map(async (session) => {
      const ended = await request(clients.get(session.userId)!, 'session:end', { sessionId: session.id });
      assert.ok(ended.ok, JSON.stringify(ended));
      assert.is(ended.session.status, 'ended');
      session.ackCost = ended.session.cost;
    }),
  );
}

async function settledCount(ids: string[]): Promise<number> {
  const row = await cluster.database.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('id', 'in', ids)
    .where('settled_at', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function waitAllSettled(batch: TrackedSession[], what: string): Promise<number> {
  const started = Date.now();
  const ids = batch.map((s) => s.id);
  await withOutput(waitFor(async () => (await settledCount(ids)) === ids.length, SETTLE_TIMEOUT_MS, what));
  return Date.now() - started;
}

/** Billing backends waiting on a lock, and how many of them wait in settlement's `user_profiles … for no key update`. */
async function blockedBilling(): Promise<{ waiting: number; settling: number }> {
  const { rows } = await sql<{ waiting: string; settling: string }>`
    select count(*) as waiting,
           count(*) filter (where query ilike '%from "user_profiles"%for no key update%') as settling
      from pg_stat_activity
     where datname = current_database() and application_name = 'tollgate-billing' and wait_event_type = 'Lock'`.execute(
    cluster.database.db,
  );
  return { waiting: Number(rows[0]!.waiting), settling: Number(rows[0]!.settling) };
}

/** The BullMQ key base of each billing queue partition. */
const partitionKeys = () => Array.from({ length: BILLING_QUEUE_PARTITIONS }, (_, p) => `${billingQueuePrefix(cluster.prefix, p)}:${BILLING_QUEUE}`);

/** Ids of the billing queue's active jobs (a killed worker's stay there until their locks expire). */
async function activeJobs(): Promise<string[]> {
  return (await Promise.all(partitionKeys().map((queue) => cluster.redis.lrange(`${queue}:active`, 0, -1)))).flat();
}

/** Sessions the billing processes' reconcilers settled (from their logs), by kind. */
function reconciled(handles: ProcessHandle[]): { resettled: number; stateLost: number } {
  const counts = { resettled: 0, stateLost: 0 };
  for (const line of handles.flatMap((h) => h.output().split('\n'))) {
    if (!line.includes('reconciler settled')) continue;
    try {
      const entry = JSON.parse(line) as { resettled?: unknown[]; stateLost?: unknown[] };
      counts.resettled += entry.resettled?.length ?? 0;
      counts.stateLost += entry.stateLost?.length ?? 0;
    } catch {
      // Not a log line of ours.
    }
  }
  return counts;
}

/** The invariants of RELIABILITY.md: per session and user of `batch`, and over the whole database. */
async function checkInvariants(batch: TrackedSession[]): Promise<void> {
  const db = cluster.database.db;
  const ids = batch.map((s) => s.id);
  const rows = await db.selectFrom('sessions').select(['id', 'total_cost', 'settled_at']).where('id', 'in', ids).execute();
  assert.is(rows.length, batch.length, 'every session is recorded');
  const totalOf = new Map(rows.map((r) => [r.id, parseMoney(r.total_cost)]));
  for (const row of rows) {
    const session = batch.find((s) => s.id === row.id)!;
    assert.ok(row.settled_at, `session ${row.id} is settled`);
    assert.is(row.total_cost, session.ackCost, `session ${row.id}: the settled total is the cost session:end acknowledged`);
  }

  // 1 and 3: three entries per session, one of each kind, summing to zero (a second settlement would add more).
  const ledger = await db.selectFrom('ledger_entries').select(['session_id', 'kind', 'amount', 'account_id']).execute();
  const entriesOf = new Map<string, typeof ledger>();
  for (const entry of ledger) entriesOf.set(entry.session_id, [...(entriesOf.get(entry.session_id) ?? []), entry]);
  for (const session of batch) {
    const entries = entriesOf.get(session.id) ?? [];
    assert.equal(entries.map((e) => e.kind).sort(), ['creator_earning', 'platform_fee', 'session_charge'], `session ${session.id}: 3 ledger entries`);
    assert.is(entries.reduce((sum, e) => sum + parseMoney(e.amount), 0n), 0n, `session ${session.id}: entries sum to 0`);
    const charge = entries.find((e) => e.kind === 'session_charge')!;
    assert.is(charge.account_id, session.userId);
    assert.is(-parseMoney(charge.amount), totalOf.get(session.id));
  }

  // 4: each user of the batch paid exactly the totals of their sessions, never going below zero.
  const userIds = [...new Set(batch.map((s) => s.userId))];
  const users = await db.selectFrom('user_profiles').select(['id', 'credits_remaining', 'total_spent']).where('id', 'in', userIds).execute();
  for (const user of users) {
    const spent = batch.filter((s) => s.userId === user.id).reduce((sum, s) => sum + totalOf.get(s.id)!, 0n);
    assert.is(user.credits_remaining, formatMoney(parseMoney(initialCredits.get(user.id)!) - spent), `user ${user.id}: credits`);
    assert.ok(parseMoney(user.credits_remaining) >= 0n);
    assert.is(parseMoney(user.total_spent), spent, `user ${user.id}: total_spent`);
  }
  const analytics = await db
    .selectFrom('user_analytics')
    .select((eb) => eb.fn.sum<string>('sessions_count').as('n'))
    .where('user_id', 'in', userIds)
    .executeTakeFirstOrThrow();
  assert.is(Number(analytics.n), batch.length, 'user_analytics counts each session once');

  // 5: every acknowledged message and every completed reply stored exactly once, nothing else.
  const expected = batch.flatMap((s) => [...s.messageIds].map((id) => `${s.id}/${id}`)).sort();
  // a killed worker's message jobs come back only when their lock runs out (30 s): wait for them, then compare
  const messages = await waitFor(async () => {
    const rows = await db.selectFrom('messages').select(['id', 'session_id']).where('session_id', 'in', ids).execute();
    return rows.length >= expected.length && rows;
  }, 90_000, 'every acknowledged message to be stored').catch(() =>
    db.selectFrom('messages').select(['id', 'session_id']).where('session_id', 'in', ids).execute(),
  );
  assert.equal(messages.map((m) => `${m.session_id}/${m.id}`).sort(), expected, 'messages stored exactly once');

  // 2, over the whole database: Σ user debits = Σ settled totals = Σ creator earnings + Σ platform fees.
  const sum = (kind: string) => ledger.filter((e) => e.kind === kind).reduce((n, e) => n + parseMoney(e.amount), 0n);
  const settled = await db.selectFrom('sessions').select(['id', 'clone_id', 'total_cost']).where('settled_at', 'is not', null).execute();
  const totals = settled.reduce((n, s) => n + parseMoney(s.total_cost), 0n);
  assert.ok(totals > 0n, 'the sessions cost something');
  assert.is(-sum('session_charge'), totals, 'Σ user debits = Σ session totals');
  assert.is(sum('creator_earning') + sum('platform_fee'), totals, 'Σ earnings + Σ fees = Σ session totals');
  assert.is(ledger.length, 3 * settled.length, 'three ledger entries per settled session, no others');

  // Each clone counted each settled session once and earned exactly its creator entries.
  const cloneRows = await db.selectFrom('clones').select(['id', 'total_sessions', 'total_earnings']).where('id', 'in', clones).execute();
  for (const clone of cloneRows) {
    const mine = settled.filter((s) => s.clone_id === clone.id);
    assert.is(Number(clone.total_sessions), mine.length, `clone ${clone.id}: total_sessions`);
    const earned = mine.reduce((n, s) => n + parseMoney(entriesOf.get(s.id)?.find((e) => e.kind === 'creator_earning')?.amount ?? '0'), 0n);
    assert.is(parseMoney(clone.total_earnings), earned, `clone ${clone.id}: total_earnings`);
  }

  let failed = 0;
  for (const queue of partitionKeys()) failed += await cluster.redis.zcard(`${queue}:failed`);
  assert.is(failed, 0, 'no billing job failed for good');
}

test('SIGKILL the billing worker in the middle of settling: after restart, every session settled exactly once, ledgers balanced', async () => {
  const clients = await openSessions(8, () => between(2, 3));
  const round = [...sessions];
  const ids = round.map((s) => s.id);
  const messageCount = round.reduce((n, s) => n + s.messageIds.size, 0);
  // Everything but the settlements is in Postgres first, so the row lock below can only stop settlements.
  await withOutput(waitFor(
    async () => {
      const row = await cluster.database.db
        .selectFrom('messages')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('session_id', 'in', ids)
        .executeTakeFirstOrThrow();
      return Number(row.n) === messageCount;
    },
    20_000,
    'the messages stored',
  ));

  // Hold half the users' rows: their settlements stop inside the transaction, after locking the session row. FOR NO
  // KEY UPDATE is the lock settlement itself takes, so only settlements wait on it. (FOR UPDATE would also stop
  // foreign-key checks, e.g. of a session-state job's second UPDATE of a session row it inserted or updated in the
  // same transaction — Postgres re-checks the key then — and the worker would block outside any settlement.)
  const lockedUsers = [...clients.keys()].slice(0, clients.size / 2);
  const locked = round.filter((s) => lockedUsers.includes(s.userId));
  const unlocked = round.filter((s) => !lockedUsers.includes(s.userId));
  lockClient = new pg.Client({ connectionString: cluster.database.url, application_name: 'tollgate-test-lock' });
  await lockClient.connect();
  await lockClient.query('begin');
  await lockClient.query('select id from user_profiles where id = any($1) for no key update', [lockedUsers]);

  await endSessions(clients, round);
  for (const client of clients.values()) client.disconnect();

  // Blocked for sure: settlements wait on the lock, and the rest settled unless every worker slot is blocked.
  const blocked = await withOutput(
    waitFor(
      async () => {
        const state = await blockedBilling();
        if (state.settling < 1) return false;
        const done = await settledCount(unlocked.map((s) => s.id));
        return done === unlocked.length || state.waiting >= CONCURRENCY ? { ...state, unlockedSettled: done } : false;
      },
      30_000,
      'the billing worker blocked in a settlement',
    ),
    async () => {
      const { rows } = await sql<Record<string, unknown>>`
        select pid, application_name as app, state, wait_event_type, wait_event, pg_blocking_pids(pid) as blocked_by,
               left(query, 120) as query
          from pg_stat_activity where datname = current_database() and state <> 'idle'`.execute(cluster.database.db);
      const counts = await Promise.all(partitionKeys().map(async (queue) =>
        (await cluster.redis.multi().llen(`${queue}:wait`).llen(`${queue}:active`).zcard(`${queue}:delayed`).zcard(`${queue}:failed`).exec())
          ?.map(([, n]) => String(n)).join('/')));
      return (
        `; settled ${await settledCount(ids)}/${ids.length}; queue wait/active/delayed/failed by partition ` +
        `${counts.join(', ')}; busy backends:\n${rows.map((r) => JSON.stringify(r)).join('\n')}`
      );
    },
  );
  assert.is(await settledCount(locked.map((s) => s.id)), 0, 'no settlement of a locked user got through');

  const code = await billing.kill('SIGKILL');
  kills++;
  assert.is(code, null, 'the worker died of the signal');
  await lockClient.query('rollback');
  await lockClient.end();
  lockClient = undefined;

  billing = await cluster.startBilling('billing-2');
  const recoveryMs = await waitAllSettled(round, 'every session settled after the restart');
  await checkInvariants(round);
  console.log(
    `billing-crash round 1: sessions=${round.length} messages=${messageCount} locked=${locked.length} ` +
      `blocked backends=${blocked.waiting} (in settlement ${blocked.settling}) settled before kill=${blocked.unlockedSettled} ` +
      `kills=1 settled=${await settledCount(ids)} recovery=${recoveryMs} ms reconciler=${JSON.stringify(reconciled([billing]))}`,
  );
});

test('SIGKILL the billing worker at seeded random instants while 20 sessions settle: every session settled exactly once', async () => {
  // Stop the worker so the round's jobs pile up, then let short-lived workers chew on them and die.
  if (lockClient) await lockClient.end(); // left over by a failed first test; its transaction rolls back
  lockClient = undefined;
  if (!billing.exited) {
    const stopped = await billing.kill('SIGTERM');
    assert.is(stopped, 0, `the billing worker stops cleanly on SIGTERM\n${billing.output().slice(-3000)}`);
  }
  const before = sessions.length;
  const clients = await openSessions(10, () => 2);
  const round = sessions.slice(before);
  assert.is(round.length, 20);
  const ids = round.map((s) => s.id);
  await endSessions(clients, round);
  for (const client of clients.values()) client.disconnect();

  const plannedKills = between(2, 4);
  const log: string[] = [];
  const workers: ProcessHandle[] = [];
  let inFlightKills = 0;
  for (let i = 0; i < plannedKills; i++) {
    const settledBefore = await settledCount(ids);
    // The kill comes when `target` sessions have settled or after `limitMs`, whichever is first.
    const target = Math.min(ids.length, settledBefore + between(1, 5));
    const limitMs = between(50, 1500);
    const orphaned = new Set(await activeJobs());
    billing = await cluster.startBilling(`billing-r2-${i}`);
    workers.push(billing);
    const up = Date.now();
    let settledAtKill = settledBefore;
    for (;;) {
      settledAtKill = await settledCount(ids);
      if (settledAtKill >= target || Date.now() - up >= limitMs) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const inFlight = (await activeJobs()).filter((id) => !orphaned.has(id));
    await billing.kill('SIGKILL');
    kills++;
    if (inFlight.length > 0) inFlightKills++;
    log.push(`kill ${i}: +${Date.now() - up} ms target=${target} settled=${settledAtKill} in-flight jobs=${inFlight.length}`);
  }
  console.log(`billing-crash round 2 (SEED=${SEED}):\n  ${log.join('\n  ')}`);
  assert.ok(inFlightKills > 0, 'at least one kill caught jobs in flight (else this round tested nothing)');

  billing = await cluster.startBilling('billing-r2-final');
  workers.push(billing);
  const recoveryMs = await waitAllSettled(round, 'every session settled after the random kills');
  const metrics = await (await fetch(`${billing.url}/metrics`)).text();
  const duplicates = /billing_jobs_total\{[^}]*name="settle-session"[^}]*result="duplicate"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? '0';
  await checkInvariants(round);
  console.log(
    `billing-crash: sessions=${sessions.length} kills=${kills} (round 2: ${plannedKills}, ${inFlightKills} with jobs in flight) ` +
      `settled=${await settledCount(round.map((s) => s.id))}/${round.length} recovery=${recoveryMs} ms ` +
      `duplicate settlements absorbed=${duplicates} reconciler=${JSON.stringify(reconciled(workers))}`,
  );
});

test.run();

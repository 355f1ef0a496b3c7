/**
 * Scenario 4, settlement: S sessions × K messages (each answered by the offline clone, so 2K message rows per
 * session) end at once, and the billing worker settles them into Postgres. Two phases on one gateway + worker:
 *
 * - backlog: the billing queue is paused (BullMQ `Queue.pause()`) while the sessions start, send their messages and
 *   end at once; at resume every job of the lot is waiting. Messages/s = message rows ÷ time from resume until all
 *   are in `messages`; sessions/s = S ÷ time from resume until every `settled_at` is set (both polled every 100 ms).
 * - live: the same with the worker running; once every message is stored the sessions end at once, and
 *   end → settled latency = `settled_at` − `end_time` per session (both written on this machine's clock).
 *
 * While the worker drains, pg_stat_activity is sampled (what each busy backend waits on) to show where it waits.
 *
 * Baseline: as many rows as the backlog phase stored, inserted into `messages` (same table, indexes and foreign
 * key) by plain multi-row INSERTs of 1000 rows through `pg`, one statement after another. Ratio = backlog
 * messages/s ÷ baseline rows/s.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { duplicateRedis } from '#shared/live-state/redis-client.ts';
import { BENCH_JWT_AUDIENCE, BENCH_JWT_SECRET } from '../bench-environment.ts';
import { rounded, summarize } from '../latency-stats.ts';
import { ProcSampler } from '../proc-stats.ts';
import { RedisCommandStats } from '../redis-command-stats.ts';
import type { TableRow } from '../report-table.ts';
import { waitUntil, type ScenarioContext, type ScenarioResult, type ServerSet } from '../scenario-context.ts';

const POLL_MS = 100;
const INSERT_BATCH = 1000;
/** About as long as an offline clone reply, so baseline rows weigh what the worker's rows weigh. */
const REPLY_LIKE_TEXT =
  'Dr. Bench: I hear you asking about "settlement bench message". As an expert in benchmarks and billing, I would start by ' +
  'pinning down what matters most to you here, then work through it one step at a time. I am answering in offline mode, ' +
  'without an AI model, so take this as a placeholder rather than considered advice.';

interface Prepared {
  pool: string;
  sessionIds: string[];
  messages: number;
  endDurationMs: number;
}

export async function runSettlement(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { settle } = ctx.options;
  const drainTimeoutMs = ctx.options.quick ? 30_000 : 600_000;
  const userCount = Math.ceil(settle.sessions / settle.perUser);
  const cloneId = await ctx.environment.createClone('1.0000');
  const db = ctx.environment.db;

  const countMessages = async (ids: string[]) =>
    Number(
      (await db.selectFrom('messages').select((eb) => eb.fn.countAll<string>().as('n')).where('session_id', 'in', ids).executeTakeFirstOrThrow()).n,
    );
  const countSettled = async (ids: string[]) =>
    Number(
      (
        await db
          .selectFrom('sessions')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('id', 'in', ids)
          .where('settled_at', 'is not', null)
          .executeTakeFirstOrThrow()
      ).n,
    );

  /** Users connect, start their sessions and send their messages (waiting for every reply). */
  const prepare = async (set: ServerSet, label: string): Promise<Omit<Prepared, 'endDurationMs'>> => {
    const userIds = await ctx.environment.createUsers(userCount, '1000000.0000');
    const pool = `settle-${label}`;
    const connected = await ctx.load.call('connect', {
      pool,
      url: set.gateways[0]!.url,
      userIds,
      secret: BENCH_JWT_SECRET,
      audience: BENCH_JWT_AUDIENCE,
      concurrency: 50,
      localAddresses: ['127.0.0.1'],
      timeoutMs: 60_000,
    });
    if (connected.failed > 0) throw new Error(`${connected.failed} clients failed to connect: ${JSON.stringify(connected.errors)}`);
    const perClient = userIds.map((_, i) => Math.max(0, Math.min(settle.perUser, settle.sessions - i * settle.perUser)));
    const started = await ctx.load.call('startSessions', { pool, cloneId, perClient, type: 'chat', concurrency: 50 });
    if (started.failed > 0) throw new Error(`${started.failed} sessions failed to start: ${JSON.stringify(started.errors)}`);
    ctx.progress.note(`  ${label}: ${started.sessions.length} sessions × ${settle.messages} messages`);
    const sent = await ctx.load.call('sendMessages', { pool, messagesPerSession: settle.messages, concurrency: 50, replyWaitMs: 60_000 });
    if (sent.failed > 0) throw new Error(`${sent.failed} messages failed: ${JSON.stringify(sent.errors)}`);
    return { pool, sessionIds: started.sessions.map((s) => s.sessionId), messages: sent.sent + sent.replies };
  };

  // Settlement is what is measured: on a saturated machine the gateway's presence heartbeat can fall more than
  // PRESENCE_TIMEOUT_MS behind and pause the sessions mid-run (docs/performance.md, "presence hazard"), which
  // would end the scenario before it measures anything.
  const set = await ctx.servers('settle', { gateways: 1, billing: true, env: { PRESENCE_TIMEOUT_MS: '3600000' } });
  const queue = new BillingQueues(duplicateRedis(ctx.environment.redis), set.prefix);
  const pools: string[] = [];
  try {
    // ---- backlog phase
    await queue.pause();
    const backlog = await prepare(set, 'backlog');
    pools.push(backlog.pool);
    const ended = await ctx.load.call('endSessions', { pool: backlog.pool });
    if (ended.failed > 0) throw new Error(`${ended.failed} session:end failed: ${JSON.stringify(ended.errors)}`);
    const queued = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
    ctx.progress.note(`  backlog: ${backlog.sessionIds.length} sessions ended, ${backlog.messages} message rows and their settlements queued; resuming the worker`);
    const sampler = new ProcSampler({ gateway: set.gateways[0]!.pid, billing: set.billing!.pid, load: ctx.load.pid, bench: process.pid });
    const redisStats = new RedisCommandStats(ctx.environment.redis);
    await redisStats.start();
    sampler.start();
    const resumedAt = performance.now();
    await queue.resume();
    let messagesDoneAt = Number.NaN;
    let settledDoneAt = Number.NaN;
    let storedMessages = 0;
    let settledSessions = 0;
    const backlogWaits: Record<string, number> = {};
    await waitUntil(async () => {
      await sampleWaits(db, ctx.environment.databaseName, backlogWaits);
      if (Number.isNaN(messagesDoneAt)) {
        storedMessages = await countMessages(backlog.sessionIds);
        if (storedMessages >= backlog.messages) messagesDoneAt = performance.now();
      }
      if (Number.isNaN(settledDoneAt)) {
        settledSessions = await countSettled(backlog.sessionIds);
        if (settledSessions >= backlog.sessionIds.length) settledDoneAt = performance.now();
      }
      ctx.progress.update(`backlog: ${storedMessages}/${backlog.messages} messages, ${settledSessions}/${backlog.sessionIds.length} sessions settled`);
      return !Number.isNaN(messagesDoneAt) && !Number.isNaN(settledDoneAt);
    }, drainTimeoutMs, POLL_MS);
    const billingCpu = sampler.stop();
    const redis = await redisStats.stop();
    const messagesPerSecond = storedMessages / ((messagesDoneAt - resumedAt) / 1000);
    const sessionsPerSecond = settledSessions / ((settledDoneAt - resumedAt) / 1000);
    const settleSpan = await db
      .selectFrom('sessions')
      .select([sql<string>`extract(epoch from max(settled_at) - min(settled_at)) * 1000`.as('ms')])
      .where('id', 'in', backlog.sessionIds)
      .executeTakeFirstOrThrow();

    // ---- live phase
    const live = await prepare(set, 'live');
    pools.push(live.pool);
    ctx.progress.note(`  live: waiting until the worker has stored every message`);
    await waitUntil(async () => (await countMessages(live.sessionIds)) >= live.messages, drainTimeoutMs, POLL_MS);
    const liveEnded = await ctx.load.call('endSessions', { pool: live.pool });
    if (liveEnded.failed > 0) throw new Error(`${liveEnded.failed} session:end failed: ${JSON.stringify(liveEnded.errors)}`);
    const liveWaits: Record<string, number> = {};
    await waitUntil(async () => {
      await sampleWaits(db, ctx.environment.databaseName, liveWaits);
      return (await countSettled(live.sessionIds)) >= live.sessionIds.length;
    }, drainTimeoutMs, POLL_MS);
    const rows = await db
      .selectFrom('sessions')
      .select(['end_time', sql<string>`extract(epoch from settled_at - end_time) * 1000`.as('latency_ms'), sql<string>`extract(epoch from settled_at) * 1000`.as('settled_ms')])
      .where('id', 'in', live.sessionIds)
      .where('settled_at', 'is not', null)
      .execute();
    const latency = rounded(summarize(rows.map((r) => Number(r.latency_ms))));
    const firstEnd = Math.min(...rows.map((r) => r.end_time!.getTime()));
    const lastSettled = Math.max(...rows.map((r) => Number(r.settled_ms)));
    const liveSessionsPerSecond = rows.length / ((lastSettled - firstEnd) / 1000);

    // ---- baseline: plain multi-row INSERTs of as many rows into the same table
    const baseline = await rawInsert(ctx.environment.databaseUrl, backlog.sessionIds, storedMessages);

    const ratio = messagesPerSecond / baseline.rowsPerSecond;
    const figures = {
      sessions: settle.sessions,
      messagesPerSession: settle.messages,
      backlog: {
        sessions: backlog.sessionIds.length,
        messageRows: storedMessages,
        jobsQueuedAtResume: queued,
        endAllSeconds: ended.durationMs / 1000,
        messagesSeconds: (messagesDoneAt - resumedAt) / 1000,
        settledSeconds: (settledDoneAt - resumedAt) / 1000,
        messagesPerSecond,
        sessionsPerSecond,
        settledAtSpanMs: Number(settleSpan.ms),
        cpu: billingCpu,
        redis,
        postgresWaitSamples: backlogWaits,
      },
      live: { sessions: rows.length, endToSettledMs: latency, sessionsPerSecond: liveSessionsPerSecond, endAllSeconds: liveEnded.durationMs / 1000, postgresWaitSamples: liveWaits },
      baseline,
      ratio,
    };
    const table: TableRow[] = [
      { scenario: 'settle', metric: 'messages settled (backlog)', unit: 'msg/s', value: messagesPerSecond, baseline: baseline.rowsPerSecond, ratio, target: { op: '>=', value: 5000 } },
      { scenario: 'settle', metric: 'messages vs raw INSERT', unit: 'ratio', value: ratio, target: { op: '>=', value: 0.3 } },
      { scenario: 'settle', metric: 'sessions settled (backlog)', unit: 'sess/s', value: sessionsPerSecond, target: { op: '>=', value: 500 } },
      { scenario: 'settle', metric: 'sessions settled (live, end at once)', unit: 'sess/s', value: liveSessionsPerSecond },
      { scenario: 'settle', metric: 'session:end → settled p50', unit: 'ms', value: latency.p50 },
      { scenario: 'settle', metric: 'session:end → settled p99', unit: 'ms', value: latency.p99, target: { op: '<=', value: 1000 } },
    ];
    return { figures, rows: table, cpu: [{ window: 'settle: backlog drain', breakdown: billingCpu, redis }] };
  } finally {
    await queue.resume().catch(() => undefined);
    await queue.close();
    for (const pool of pools) await ctx.load.call('disconnect', { pool });
    await ctx.release(set);
  }
}

/** Counts, per sample, what each of the database's backends is doing or waiting on (pg_stat_activity). */
async function sampleWaits(db: ScenarioContext['environment']['db'], database: string, into: Record<string, number>): Promise<void> {
  const rows = await sql<{ what: string; n: string }>`
    select coalesce(wait_event_type || ':' || wait_event, 'CPU') || ' (' || state || ')' as what, count(*) as n
    from pg_stat_activity
    where datname = ${database} and pid <> pg_backend_pid() and state <> 'idle'
    group by 1`.execute(db);
  for (const row of rows.rows) into[row.what] = (into[row.what] ?? 0) + Number(row.n);
}

/** Inserts `count` message rows spread over `sessionIds` with multi-row INSERTs through one pg client. */
async function rawInsert(databaseUrl: string, sessionIds: string[], count: number) {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'tollgate-bench-baseline' });
  await client.connect();
  try {
    const createdAt = new Date().toISOString();
    const started = performance.now();
    for (let from = 0; from < count; from += INSERT_BATCH) {
      const n = Math.min(INSERT_BATCH, count - from);
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (let i = 0; i < n; i++) {
        const b = values.length;
        tuples.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8})`);
        const k = from + i;
        values.push(randomUUID(), sessionIds[k % sessionIds.length], k % 2 === 0 ? 'user' : 'ai', k % 2 === 0 ? `settlement bench message ${k}` : REPLY_LIKE_TEXT, '0.0000', 0, k % 2 === 0 ? `raw-${k}` : null, createdAt);
      }
      await client.query(
        `INSERT INTO messages (id, session_id, sender_type, content, cost_increment, tokens_used, client_message_id, created_at) VALUES ${tuples.join(', ')}`,
        values,
      );
    }
    const seconds = (performance.now() - started) / 1000;
    return { rows: count, batch: INSERT_BATCH, seconds, rowsPerSecond: count / seconds };
  } finally {
    await client.end();
  }
}

/**
 * `npm run chaos`: Tollgate under crashes and restarts, then proof that no credit was lost, created or stolen.
 * Starts its own Redis (AOF everysec) and Postgres, two gateways and two billing workers, and simulated users who
 * chat, retry, drop and come back, and run out of credits, while a seeded fault loop SIGKILLs processes and
 * restarts Redis and Postgres. Then it lets the system drain and checks the invariants in Postgres, one line each.
 * Exit 0 only if all hold.
 *
 *   npm run chaos                       500 users, 3 minutes
 *   npm run chaos -- --short            40 users, 20 s (what `npm test` runs)
 *   npm run chaos -- --seed 1234        replay a run
 *   npm run chaos -- --users 200 --duration 60
 *   npm run chaos -- --users 2000            past capacity: admission control refuses what the gateways cannot serve
 *   npm run chaos -- --cluster               on a Redis Cluster (3 masters + 3 replicas): masters fail over instead
 *                                            of Redis restarts, acknowledgements wait for a replica
 *
 * Besides the money invariants a run passes only with no `internal` answer and at most 1 % of sends unanswered
 * (silence on a connection that stayed up; a request cut off by a killed gateway's dropped connection is counted
 * apart, the client knew at once).
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { QueueEvents } from 'bullmq';
import { connectRedis, duplicateRedis, scanKeys, type RedisTarget } from '#shared/live-state/redis-client.ts';
import { BILLING_QUEUE } from '#shared/contract/billing-jobs.ts';
import { createDatabase } from '#shared/db/database.ts';
import { BillingQueues } from '#shared/contract/billing-queue.ts';
import { billingQueuePrefix, BILLING_QUEUE_PARTITIONS, outboxPattern } from '#shared/live-state/keys.ts';
import { formatMoney, type Units } from '#shared/money/money.ts';
import { seededRandom } from '../lib/seeded-random.ts';
import { startChaosCluster } from './chaos-cluster.ts';
import { runFaults } from './fault-loop.ts';
import { checkInvariants } from './invariants.ts';
import { bump, emptyRecord, invalidStateCauses, runLoad } from './simulated-users.ts';
import { explainUnsettled } from './unsettled.ts';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    users: { type: 'string' },
    duration: { type: 'string' },
    seed: { type: 'string' },
  },
});
const short = values.short ?? false;
const onCluster = values.cluster ?? false;
const users = Number(values.users ?? (short ? 40 : 500));
const durationS = Number(values.duration ?? (short ? 20 : 180));
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : Date.now() % 2 ** 31;
const random = seededRandom(seed);
const began = Date.now();
const log = (line: string) => console.log(`chaos: ${line}`);
/** Teardown that must not hang the run (a pool waiting for a connection Postgres's crash left behind). */
const bounded = (what: string, work: Promise<unknown>, ms = 10_000) =>
  Promise.race([
    work,
    new Promise((resolve) => setTimeout(resolve, ms).unref()).then(() => log(`${what} did not finish within ${ms / 1000}s; going on`)),
  ]);
// a run that cannot finish says so instead of hanging whoever waits for it
let phase = 'starting';
const watchdog = setTimeout(() => {
  log(`FAIL: still ${phase} after ${((Date.now() - began) / 1000).toFixed(0)}s; giving up`);
  process.exit(1);
}, (durationS + (short ? 240 : 600)) * 1000);
watchdog.unref();

log(`seed=${seed} users=${users} duration=${durationS}s${onCluster ? ' on a Redis Cluster' : ''} (replay: npm run chaos -- --seed ${seed} --users ${users} --duration ${durationS}${onCluster ? ' --cluster' : ''}${short ? ' --short' : ''})`);
const cluster = await startChaosCluster({ log, redisCluster: onCluster, env: { PAUSED_END_MS: short ? '6000' : '20000', IDLE_PAUSE_MS: short ? '15000' : '60000' } });
let exitCode = 1;
try {
  const db = createDatabase(cluster.databaseUrl, { max: 4, applicationName: 'tollgate-chaos' });
  try {
    // creators and their clones at a few rates; users with plenty of credits, a fifth with so few they run out
    const rates = ['0.5000', '1.0000', '2.5000', '6.0000', '12.0000', '30.0000'];
    const creators = rates.map(() => ({ id: randomUUID(), email: `${randomUUID()}@chaos.local`, full_name: 'Chaos Creator', role: 'creator' as const, credits_remaining: '0.0000' }));
    await db.insertInto('user_profiles').values(creators).execute();
    const clones = rates.map((rate, i) => ({
      id: randomUUID(), creator_id: creators[i]!.id, name: `Clone ${i}`, description: 'chaos', bio: 'chaos', expertise_areas: ['chaos'],
      base_price: rate, personality_traits: JSON.stringify({}), is_published: true, is_active: true,
    }));
    await db.insertInto('clones').values(clones).execute();
    const initialCredits = new Map<string, Units>();
    const people = Array.from({ length: users }, () => {
      const credits = random.chance(0.2) ? BigInt(random.between(2_000, 30_000)) : BigInt(random.between(200_000, 2_000_000));
      const id = randomUUID();
      initialCredits.set(id, credits);
      return { id, email: `${id}@chaos.local`, full_name: 'Chaos User', role: 'user' as const, credits_remaining: formatMoney(credits) };
    });
    for (let i = 0; i < people.length; i += 500) await db.insertInto('user_profiles').values(people.slice(i, i + 500)).execute();

    const startedAt = Date.now();
    const until = startedAt + durationS * 1000;
    const record = emptyRecord();
    phase = 'running the load and the faults';
    log(`load: ${users} users on ${cluster.gateways().length} gateways for ${durationS}s; faults until ${Math.max(1, durationS - (short ? 3 : 10))}s`);
    // jobs a worker's stalled check took back from a worker that stopped renewing its locks (the frozen one, or one
    // SIGKILLed mid-job): each then ran again elsewhere, while the frozen worker still held it
    const eventsRedis = connectRedis(cluster.env as RedisTarget);
    eventsRedis.on('error', () => undefined); // Redis restarts are part of the run
    const probeRedis = duplicateRedis(eventsRedis);
    probeRedis.on('error', () => undefined);
    const probeQueue = new BillingQueues(probeRedis, cluster.env.REDIS_PREFIX!);
    probeQueue.on('error', () => undefined);
    let takenOver = 0;
    const jobEvents = Array.from({ length: BILLING_QUEUE_PARTITIONS }, (_, partition) => {
      const events = new QueueEvents(BILLING_QUEUE, { connection: duplicateRedis(eventsRedis), prefix: billingQueuePrefix(cluster.env.REDIS_PREFIX!, partition) });
      events.on('error', () => undefined);
      events.on('stalled', () => void (takenOver += 1));
      return events;
    });
    const [, faults] = await Promise.all([
      runLoad({
        users: people.map((p) => ({ id: p.id })),
        cloneIds: clones.map((c) => c.id),
        gateways: () => cluster.gateways().map((g) => g.url),
        jwtSecret: cluster.env.JWT_SECRET!,
        audience: 'authenticated',
        random: seededRandom(seed ^ 0x5bd1e995),
        until,
      }, record),
      runFaults({
        cluster,
        random,
        startedAt,
        until: until - (short ? 3000 : 10_000),
        killEverySeconds: short ? [2, 4] : [3, 6],
        freezeMs: 3 * Number(cluster.env.BILLING_LOCK_MS),
        activeJobHolders: async () =>
          (await Promise.all(probeQueue.partitions.map((queue) => queue.getActive()))).flat().flatMap((job) => (job.processedBy ? [job.processedBy] : [])),
        log,
      }),
    ]);
    const counts = (map: Map<string, number>) => JSON.stringify(Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b))));
    log(`load done: ${record.sessions.size} sessions started, ${record.sends} sends (${record.acked.size} acknowledged), ` +
      `${record.timeouts} unanswered, ${record.cutOff} cut off by a dropped connection, ${record.late} answered late (> 4 s)`);
    log(`answers refused: ${counts(record.errors)}`);
    log(`invalid_state by cause: ${counts(invalidStateCauses(record.errors))}`);
    const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
    log(`answered in (ms, p50/p99/max): ${[...record.answerMs].sort(([a], [b]) => a.localeCompare(b)).map(([event, times]) => {
      const sorted = times.sort((a, b) => a - b);
      return `${event} ${percentile(sorted, 50)}/${percentile(sorted, 99)}/${sorted.at(-1)} (${sorted.length})`;
    }).join(', ')}`);
    // what the processes warned of, grouped (message, error class and code, the error's first words): the causes behind
    // `internal` and `unavailable` answers
    const problems = new Map<string, number>();
    for (const line of cluster.problems()) {
      try {
        const entry = JSON.parse(line) as { msg?: string; event?: string; err?: { type?: string; code?: string; message?: string } };
        bump(problems, [entry.msg, entry.event, entry.err?.type, entry.err?.code, entry.err?.message?.slice(0, 60)].filter(Boolean).join(' | '));
      } catch {
        bump(problems, line.slice(0, 100));
      }
    }
    for (const [problem, n] of [...problems].sort(([, a], [, b]) => b - a).slice(0, 15)) log(`logged ${n}×: ${problem}`);
    log(`handshakes refused: ${counts(record.refusedConnects)}; chats paused 'disconnected' while their socket was connected: ${record.pausedWhileConnected}`);

    phase = 'draining';
    // drain: every process up, every session ended and settled, every outbox relayed, every billing job done
    // (a job that failed while Postgres was down waits out its backoff before it runs again)
    for (const slot of cluster.slots) if (slot.process.exited) await cluster.restart(slot);
    const redis = connectRedis(cluster.env as RedisTarget);
    const queue = new BillingQueues(redis, cluster.env.REDIS_PREFIX!);
    const drainStart = Date.now();
    const drainLimit = short ? 60_000 : 240_000;
    let failedJobs = 0;
    try {
      for (;;) {
        const { rows } = await sql<{ open: string; total: string }>`
          select count(*) filter (where status <> 'ended' or settled_at is null)::text as open, count(*)::text as total from sessions`.execute(db);
        const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed');
        failedJobs = counts.failed ?? 0;
        const pendingJobs = (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0);
        let outboxes = 0;
        await scanKeys(redis, outboxPattern(cluster.env.REDIS_PREFIX!), async (keys) => {
          for (const key of keys) outboxes += await redis.xlen(key);
        });
        const known = Number(rows[0]!.total) >= record.sessions.size;
        if (rows[0]!.open === '0' && known && pendingJobs === 0 && outboxes === 0) break;
        if (Date.now() - drainStart > drainLimit) {
          log(`drain: after ${drainLimit / 1000}s still ${rows[0]!.open} sessions open or unsettled, ${pendingJobs} jobs pending, ${outboxes} outbox entries`);
          const { rows: stuck } = await sql<{ id: string }>`select id from sessions where status <> 'ended' or settled_at is null order by id`.execute(db);
          const inPostgres = new Set((await db.selectFrom('sessions').select('id').execute()).map((s) => s.id));
          const missing = [...record.sessions].filter((id) => !inPostgres.has(id));
          for (const s of await explainUnsettled(db, redis, cluster.env.REDIS_PREFIX!, [...stuck.map((r) => r.id), ...missing])) {
            log(`unsettled: session ${s.sessionId} of user ${s.userId ?? '?'}: ${s.row}; ${s.reason}`);
          }
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      await bounded('closing the queue', queue.close());
      redis.disconnect();
    }
    log(`drained in ${((Date.now() - drainStart) / 1000).toFixed(1)}s`);

    await bounded('closing the job events', Promise.all([...jobEvents.map((events) => events.close()), probeQueue.close()]));
    eventsRedis.disconnect();
    probeRedis.disconnect();

    phase = 'checking the invariants';
    const report = await checkInvariants(db, record, initialCredits);
    const restarts = faults.redisRestarts + faults.postgresRestarts;
    report.checks.push({
      name: 'no billing job failed for good',
      ok: failedJobs === 0,
      detail: `${failedJobs} in the failed set`,
    });
    const internal = (record.errors.get('internal') ?? 0) + (record.refusedConnects.get('internal') ?? 0);
    report.checks.push({
      name: 'no answer was `internal`',
      ok: internal === 0,
      detail: `${record.errors.get('internal') ?? 0} internal answers, ${record.refusedConnects.get('internal') ?? 0} handshakes refused internal (the warnings above and gateway_internal_answers_total say why)`,
    });
    const notTheUsers = invalidStateCauses(record.errors).get("not the user's doing") ?? 0;
    report.checks.push({
      name: 'no invalid_state the user did not cause',
      ok: notTheUsers === 0,
      detail: `${notTheUsers} of ${record.errors.get('invalid_state') ?? 0} (causes above)`,
    });
    report.checks.push({
      name: 'at most 1 % of sends unanswered',
      ok: record.timeouts <= record.sends / 100,
      detail: `${record.timeouts} requests unanswered within 15 s of ${record.sends} sends (${((100 * record.timeouts) / Math.max(1, record.sends)).toFixed(2)} %); ${record.cutOff} cut off by a dropped connection`,
    });
    report.checks.push({
      name: 'no process died on its own',
      ok: cluster.crashes.length === 0,
      detail:
        (cluster.crashes.length === 0 ? 'every exit was a kill of the run' : `crashed: ${cluster.crashes.join(', ')}`) +
        (cluster.slowStarts.length > 0 ? `; starts retried (not healthy in 45 s): ${cluster.slowStarts.join(', ')}` : ''),
    });
    for (const c of report.checks) console.log(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    const allHold = report.checks.every((c) => c.ok) && report.lost === 0 && report.created === 0;
    console.log(
      `chaos: ${allHold ? 'PASS' : 'FAIL'} seed=${seed} sessions=${report.sessions} messages=${report.messages} kills=${faults.kills} ` +
        `restarts=${restarts} (redis ${faults.redisRestarts}, postgres ${faults.postgresRestarts}) ${onCluster ? `failovers=${faults.failovers} ` : ''}freezes=${faults.freezes} ` +
        `jobs taken over=${takenOver} duplicates absorbed=${record.duplicatesAbsorbed} ` +
        `sends=${record.sends} unanswered=${record.timeouts} cut off=${record.cutOff} internal=${internal} overloaded=${record.errors.get('overloaded') ?? 0}+${record.refusedConnects.get('overloaded') ?? 0} ` +
        `lost=${report.lost} created=${report.created} in ${((Date.now() - began) / 1000).toFixed(0)}s`,
    );
    exitCode = allHold ? 0 : 1;
  } finally {
    phase = 'closing';
    await bounded('closing the database pool', db.destroy());
  }
} catch (error) {
  console.error('chaos: the run could not complete:', error);
} finally {
  await bounded('stopping the cluster', cluster.close(), 60_000);
}
process.exit(exitCode);

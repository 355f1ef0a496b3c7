/**
 * The chaos run's faults, seeded so a run replays: every few seconds a random gateway or billing worker is
 * SIGKILLed and started again; Redis is SIGKILLed and restarted (AOF replay) at fixed fractions of the run (at
 * least twice) — on a Redis Cluster, a master is SIGKILLed instead, its replica takes over, and the killed node comes
 * back as the new master's replica; Postgres is crash-restarted (`pg_ctl restart -m immediate`) once; a billing worker is frozen
 * (SIGSTOP) for a few job-lock lifetimes, so the other worker takes over its running jobs while it still holds them,
 * then thawed (SIGCONT) to finish them too: two workers run the same jobs at once. Each fault is logged with the time
 * since the start.
 */
import type { SeededRandom } from '../lib/seeded-random.ts';
import type { ChaosCluster } from './chaos-cluster.ts';

export interface FaultCounts {
  kills: number;
  redisRestarts: number;
  /** Redis Cluster masters SIGKILLed and replaced by their replicas. */
  failovers: number;
  postgresRestarts: number;
  /** Billing workers frozen past their job locks. */
  freezes: number;
}

export interface FaultLoopOptions {
  cluster: ChaosCluster;
  random: SeededRandom;
  startedAt: number;
  /** Faults stop here (the system then has time to recover before the load ends). */
  until: number;
  /** Seconds between process kills: [min, max]. */
  killEverySeconds: [number, number];
  /** How long a frozen billing worker stays frozen: a few of its BILLING_LOCK_MS. */
  freezeMs: number;
  /** Who holds the billing jobs running now (their `processedBy`: `billing:<host>:<pid>`). */
  activeJobHolders(): Promise<string[]>;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFaults(options: FaultLoopOptions): Promise<FaultCounts> {
  const { cluster, random, startedAt, until, log } = options;
  const counts: FaultCounts = { kills: 0, redisRestarts: 0, failovers: 0, postgresRestarts: 0, freezes: 0 };
  const span = until - startedAt;
  const planned: Array<{ at: number; kind: 'redis' | 'postgres' | 'freeze'; done: boolean }> = [
    { at: startedAt + span * 0.15, kind: 'freeze', done: false },
    { at: startedAt + span * 0.25, kind: 'redis', done: false },
    { at: startedAt + span * 0.45, kind: 'postgres', done: false },
    { at: startedAt + span * 0.7, kind: 'redis', done: false },
  ];
  const stamp = () => `+${((Date.now() - startedAt) / 1000).toFixed(1)}s`;
  const gap = () => random.between(options.killEverySeconds[0] * 1000, options.killEverySeconds[1] * 1000);
  // a killed process comes back in the background, so kills and restarts of the servers overlap as they would
  const down = new Set<string>();
  const restarting: Array<Promise<void>> = [];
  let nextKill = Date.now() + gap();
  const runPlanned = async (kind: 'redis' | 'postgres' | 'freeze') => {
    const t0 = Date.now();
    if (kind === 'redis' && 'cluster' in cluster.redis) {
      const redis = cluster.redis.cluster;
      const masters = await redis.masterPorts();
      const { port, failoverMs } = await redis.killMaster(random.pick(masters));
      counts.failovers += 1;
      log(`${stamp()} redis master :${port} SIGKILL → its replica took over in ${failoverMs} ms`);
      // back as the new master's replica, so a later failover of that shard has someone to promote
      await redis.nodes.find((n) => n.port === port)!.restart();
      await redis.waitHealthy(60_000);
      log(`${stamp()} redis node :${port} back as a replica`);
    } else if (kind === 'redis' && 'server' in cluster.redis) {
      await cluster.redis.server.kill('SIGKILL');
      await sleep(random.between(200, 1000));
      await cluster.redis.server.restart();
      counts.redisRestarts += 1;
      log(`${stamp()} redis SIGKILL → restarted with AOF replay (${Date.now() - t0} ms down)`);
    } else if (kind === 'postgres') {
      await cluster.postgres.crashRestart();
      counts.postgresRestarts += 1;
      log(`${stamp()} postgres pg_ctl restart -m immediate (${Date.now() - t0} ms)`);
    } else {
      // a worker that is up and holds a running job (looked for up to 5 s), frozen in the middle of it
      const workers = () => cluster.slots.filter((slot) => slot.kind === 'billing' && !down.has(slot.name) && !slot.process.exited);
      // drawn whatever happens next, so the seeded sequence of later faults does not depend on the polling below
      const fallback = workers().length > 0 ? random.pick(workers()) : undefined;
      let slot: (typeof cluster.slots)[number] | undefined;
      for (const deadline = Date.now() + 5000; !slot && Date.now() < deadline; await sleep(25)) {
        const holders = await options.activeJobHolders().catch(() => [] as string[]);
        slot = workers().find((w) => holders.some((holder) => holder.endsWith(`:${w.process.pid}`)));
      }
      slot ??= fallback && !down.has(fallback.name) && !fallback.process.exited ? fallback : undefined;
      if (!slot) return;
      down.add(slot.name);
      log(`${stamp()} SIGSTOP ${slot.name} (pid ${slot.process.pid}) for ${options.freezeMs} ms: its job locks lapse, the other worker takes its jobs`);
      try {
        await cluster.freeze(slot, options.freezeMs);
      } finally {
        down.delete(slot.name);
      }
      counts.freezes += 1;
      log(`${stamp()} SIGCONT ${slot.name}: it finishes the jobs it held`);
    }
  };
  while (Date.now() < until) {
    const due = planned.find((p) => !p.done && p.at <= Date.now());
    if (due) {
      due.done = true;
      await runPlanned(due.kind);
      continue;
    }
    const up = cluster.slots.filter((s) => !down.has(s.name));
    if (Date.now() >= nextKill && up.length > 0) {
      const slot = random.pick(up);
      down.add(slot.name);
      await cluster.kill(slot);
      counts.kills += 1;
      const pause = random.between(200, 2000);
      log(`${stamp()} SIGKILL ${slot.name} (pid ${slot.process.pid}), restart in ${pause} ms`);
      restarting.push(
        sleep(pause)
          .then(() => cluster.restart(slot))
          .then(() => log(`${stamp()} ${slot.name} back (pid ${slot.process.pid})`))
          .finally(() => down.delete(slot.name)),
      );
      nextKill = Date.now() + gap();
      continue;
    }
    await sleep(50);
  }
  // what is planned always happens, even when restarts took the time
  for (const p of planned.filter((x) => !x.done)) await runPlanned(p.kind);
  await Promise.all(restarting);
  return counts;
}

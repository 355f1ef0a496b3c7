/**
 * The chaos run's faults, seeded so a run replays: every few seconds a random gateway or billing worker is
 * SIGKILLed and started again; Redis is SIGKILLed and restarted (AOF replay) at fixed fractions of the run (at
 * least twice); Postgres is crash-restarted (`pg_ctl restart -m immediate`) once. Each fault is logged with the
 * time since the start.
 */
import type { SeededRandom } from '../lib/seeded-random.ts';
import type { ChaosCluster } from './chaos-cluster.ts';

export interface FaultCounts {
  kills: number;
  redisRestarts: number;
  postgresRestarts: number;
}

export interface FaultLoopOptions {
  cluster: ChaosCluster;
  random: SeededRandom;
  startedAt: number;
  /** Faults stop here (the system then has time to recover before the load ends). */
  until: number;
  /** Seconds between process kills: [min, max]. */
  killEverySeconds: [number, number];
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFaults(options: FaultLoopOptions): Promise<FaultCounts> {
  const { cluster, random, startedAt, until, log } = options;
  const counts: FaultCounts = { kills: 0, redisRestarts: 0, postgresRestarts: 0 };
  const span = until - startedAt;
  const planned: Array<{ at: number; kind: 'redis' | 'postgres'; done: boolean }> = [
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
  while (Date.now() < until) {
    const due = planned.find((p) => !p.done && p.at <= Date.now());
    if (due) {
      due.done = true;
      const t0 = Date.now();
      if (due.kind === 'redis') {
        await cluster.redis.kill('SIGKILL');
        await sleep(random.between(200, 1000));
        await cluster.redis.restart();
        counts.redisRestarts += 1;
        log(`${stamp()} redis SIGKILL → restarted with AOF replay (${Date.now() - t0} ms down)`);
      } else {
        await cluster.postgres.crashRestart();
        counts.postgresRestarts += 1;
        log(`${stamp()} postgres pg_ctl restart -m immediate (${Date.now() - t0} ms)`);
      }
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
  for (const p of planned.filter((x) => !x.done)) {
    const t0 = Date.now();
    if (p.kind === 'redis') {
      await cluster.redis.kill('SIGKILL');
      await cluster.redis.restart();
      counts.redisRestarts += 1;
      log(`${stamp()} redis SIGKILL → restarted with AOF replay (${Date.now() - t0} ms down)`);
    } else {
      await cluster.postgres.crashRestart();
      counts.postgresRestarts += 1;
      log(`${stamp()} postgres pg_ctl restart -m immediate (${Date.now() - t0} ms)`);
    }
  }
  await Promise.all(restarting);
  return counts;
}

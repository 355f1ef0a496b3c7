/**
 * `clusterComparison`: the rows `npm run bench -- --cluster` adds under the passes' own — the Redis Cluster beside
 * one Redis (capacity and Redis cost of the same scenario), how evenly the cluster's masters shared the command time
 * (a hot slot shows as one master far above an even share; the issue's bound is 45 % with three masters), and what
 * acknowledgements that wait for a replica cost (message ack p99 at the same arrival rate, capacity).
 */
import type { ScenarioName } from './bench-options.ts';
import type { RedisWindow } from './redis-command-stats.ts';
import type { TableRow } from './report-table.ts';
import type { ScenarioResult } from './scenario-context.ts';

type PassResults = Map<string, Partial<Record<ScenarioName, ScenarioResult>>>;

/** The part of churn's figures read here (scenarios/churn.ts). */
interface ChurnFigures {
  messagesPerUser: number;
  gateway: { capacityUsersPerSecond: number; steps: Array<{ arrivalRate: number; pass: boolean; run: { ack: { p99: number } }; cost?: { redisUsecPerMessage: number } }> };
}

/** The part of meter's figures read here (scenarios/meter-at-scale.ts). */
interface MeterFigures {
  redisUsecPerSessionSecond: number;
  ticks: { latenessP99: number };
}

const busiestShare = (redis: RedisWindow | undefined) => (redis?.shards[0]?.share ?? Number.NaN) * 100;
const evenShare = (redis: RedisWindow | undefined) => (redis && redis.shards.length > 0 ? 100 / redis.shards.length : Number.NaN);
const ratioOf = (value: number, baseline: number) => (baseline > 0 ? value / baseline : Number.NaN);

export function clusterComparison(passes: PassResults): TableRow[] {
  const rows: TableRow[] = [];
  const one = passes.get('one') ?? {};
  const cluster = passes.get('cluster') ?? {};
  const acks = passes.get('cluster-acks') ?? {};

  for (const name of ['churn', 'meter', 'chat', 'settle', 'fanout', 'idle'] as const) {
    const redis = cluster[name]?.cpu[0]?.redis;
    if (!redis) continue;
    rows.push({ scenario: 'cluster', metric: `${name}: busiest master's share of Redis command time (baseline: an even share)`, unit: '%', value: busiestShare(redis), baseline: evenShare(redis), target: { op: '<=', value: 45 } });
  }

  const churnOne = one.churn?.figures as ChurnFigures | undefined;
  const churnCluster = cluster.churn?.figures as ChurnFigures | undefined;
  if (churnOne && churnCluster) {
    const perUser = churnCluster.messagesPerUser;
    const value = churnCluster.gateway.capacityUsersPerSecond * perUser;
    const baseline = churnOne.gateway.capacityUsersPerSecond * perUser;
    rows.push({ scenario: 'cluster', metric: 'churn capacity, cluster (baseline: one Redis)', unit: 'msg/s', value, baseline, ratio: ratioOf(value, baseline), target: { op: '>=', value: 1, on: 'ratio' } });
    const costAt = (figures: ChurnFigures) => (figures.gateway.steps.filter((s) => s.pass).at(-1) ?? figures.gateway.steps[0])?.cost?.redisUsecPerMessage ?? Number.NaN;
    const clusterCost = costAt(churnCluster);
    const oneCost = costAt(churnOne);
    rows.push({ scenario: 'cluster', metric: 'churn Redis time per message, all masters (baseline: one Redis)', unit: 'µs', value: clusterCost, baseline: oneCost, ratio: ratioOf(clusterCost, oneCost) });
  }

  const meterOne = one.meter?.figures as MeterFigures | undefined;
  const meterCluster = cluster.meter?.figures as MeterFigures | undefined;
  if (meterOne && meterCluster) {
    const value = meterCluster.redisUsecPerSessionSecond;
    const baseline = meterOne.redisUsecPerSessionSecond;
    rows.push({ scenario: 'cluster', metric: 'meter Redis time per active session-second, cluster (baseline: one Redis)', unit: 'µs', value, baseline, ratio: ratioOf(value, baseline) });
    rows.push({ scenario: 'cluster', metric: 'meter tick lateness p99, cluster (baseline: one Redis)', unit: 'ms', value: meterCluster.ticks.latenessP99, baseline: meterOne.ticks.latenessP99 });
  }

  const churnAcks = acks.churn?.figures as ChurnFigures | undefined;
  if (churnCluster && churnAcks) {
    // the highest arrival rate both passes ran and passed (else the lowest both ran): the same load on both
    const rates = churnCluster.gateway.steps.map((s) => s.arrivalRate).filter((rate) => churnAcks.gateway.steps.some((s) => s.arrivalRate === rate));
    const passedByBoth = rates.filter((rate) => [churnCluster, churnAcks].every((f) => f.gateway.steps.find((s) => s.arrivalRate === rate)?.pass));
    const rate = passedByBoth.at(-1) ?? rates[0];
    if (rate !== undefined) {
      const p99 = (figures: ChurnFigures) => figures.gateway.steps.find((s) => s.arrivalRate === rate)?.run.ack.p99 ?? Number.NaN;
      rows.push({ scenario: 'cluster', metric: `churn message:send ack p99 at ${rate} users/s, acks wait for a replica (baseline: they do not)`, unit: 'ms', value: p99(churnAcks), baseline: p99(churnCluster) });
    }
    const perUser = churnCluster.messagesPerUser;
    const value = churnAcks.gateway.capacityUsersPerSecond * perUser;
    const baseline = churnCluster.gateway.capacityUsersPerSecond * perUser;
    rows.push({ scenario: 'cluster', metric: 'churn capacity, acks wait for a replica (baseline: they do not)', unit: 'msg/s', value, baseline, ratio: ratioOf(value, baseline) });
  }
  return rows;
}

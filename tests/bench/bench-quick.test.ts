import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

// `npm run bench -- --quick` end to end: real gateway and billing processes, a load process, every scenario.
// It checks that each scenario produced its figures and that the run cleaned up after itself, not how fast anything is.
const ROOT = path.resolve(import.meta.dirname, '../..');
const RUN_TIMEOUT_MS = 150_000;

interface Row {
  scenario: string;
  metric: string;
  value: number | null;
  baseline?: number | null;
  ratio?: number | null;
}

/** The table rows each scenario must produce (a prefix of the metric's name). */
const EXPECTED: Record<string, string[]> = {
  idle: ['connections held', 'connect rate', 'RSS per connection'],
  chat: ['achieved rate', 'message:send ack p50', 'message:send ack p99', 'message:send ack max', 'reply completed p50', 'reply completed p99', 'capacity at ack p99'],
  churn: ['capacity', 'message:send ack p50', 'message:send ack p99', 'session:start ack p99', 'session:end ack p99', 'connect (handshake) p99', 'reply completed p99', 'Redis time per message'],
  meter: ['active sessions metered', 'gateway CPU', 'tick lateness p99', '|end − exact exhaustion| p99', 'session:ended after exhaustion p99'],
  settle: ['messages settled (backlog)', 'messages vs raw INSERT', 'sessions settled (backlog)', 'session:end → settled p50', 'session:end → settled p99'],
  fanout: ['session:updated p50, other gateway', 'session:updated p99, other gateway', 'reply completed p99, other gateway', 'other − same gateway arrival p99'],
};

/** No database and no Redis key of the run left behind (on BENCH_REDIS_URL; the --cluster run's own servers are gone). */
async function assertCleanedUp(report: { databases: string[]; redisPrefixes: string[] }): Promise<void> {
  assert.ok(report.databases.length > 0);
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  const databases = await client.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [report.databases]);
  await client.end();
  assert.equal(databases.rows, [], 'databases left behind');
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    for (const prefix of report.redisPrefixes) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
      assert.equal(keys, [], `Redis keys left under ${prefix}`);
    }
  } finally {
    redis.disconnect();
  }
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // what `npm run bench -- …` runs (package.json), without depending on npm being on PATH
    const env = { ...process.env };
    if (process.env.TEST_DATABASE_URL) env.BENCH_DATABASE_URL = process.env.TEST_DATABASE_URL;
    if (process.env.TEST_REDIS_URL) env.BENCH_REDIS_URL = process.env.TEST_REDIS_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench/bench.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`bench --quick did not finish within ${RUN_TIMEOUT_MS} ms:\n${output.slice(-3000)}`));
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('npm run bench -- --quick gives every scenario its figures and removes what it created', async () => {
  const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.is(packageJson.scripts['bench'], 'node --import tsx scripts/bench/bench.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-bench-'));
  try {
    const json = path.join(dir, 'bench.json');
    const { code, output } = await runBench(['--quick', '--json', json]);
    assert.is(code, 0, `bench exited ${code}:\n${output.slice(-4000)}`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.failures, {});
    for (const field of ['cpuModel', 'cores', 'memoryBytes', 'node', 'gitCommit']) assert.ok(report.machine[field], `machine.${field}`);
    const rows = report.table as Row[];
    for (const [scenario, metrics] of Object.entries(EXPECTED)) {
      assert.ok(report.scenarios[scenario], `figures of ${scenario}`);
      for (const metric of metrics) {
        const row = rows.find((r) => r.scenario === scenario && r.metric.startsWith(metric));
        assert.ok(row, `${scenario}: no row "${metric}"`);
        assert.ok(typeof row.value === 'number' && Number.isFinite(row.value), `${scenario} ${metric}: value ${row.value}`);
        for (const field of ['baseline', 'ratio'] as const) {
          if (field in row) assert.ok(typeof row[field] === 'number' && Number.isFinite(row[field]), `${scenario} ${metric}: ${field} ${row[field]}`);
        }
      }
    }
    assert.ok(report.scenarios.idle.gateway.connected > 0 && report.scenarios.idle.bare.connected > 0);
    assert.ok(report.scenarios.chat.gateway.run.acked > 0);
    assert.ok(report.scenarios.meter.exhaustion.ended > 0);
    assert.ok(report.scenarios.settle.baseline.rowsPerSecond > 0);
    assert.ok(report.scenarios.fanout.actions > 0);

    await assertCleanedUp(report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run bench -- --quick --cluster runs churn and meter on a Redis Cluster beside one Redis and compares them', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-bench-cluster-'));
  try {
    const json = path.join(dir, 'bench.json');
    const { code, output } = await runBench(['--quick', '--cluster', '--json', json]);
    assert.is(code, 0, `bench exited ${code}:\n${output.slice(-4000)}`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.failures, {});
    assert.equal(Object.keys(report.scenarios).sort(), ['churn@cluster', 'churn@cluster-acks', 'churn@one', 'meter@cluster', 'meter@one']);
    const rows = report.table as Row[];
    for (const pass of ['one Redis', 'cluster', 'cluster, acks wait for a replica']) {
      assert.ok(rows.some((r) => r.scenario === `churn · ${pass}` && r.metric.startsWith('message:send ack p99') && Number.isFinite(r.value)), `churn on ${pass}`);
    }
    for (const metric of ['churn: busiest master', 'meter: busiest master', 'churn capacity, cluster', 'churn capacity, acks wait']) {
      const row = rows.find((r) => r.scenario === 'cluster' && r.metric.startsWith(metric));
      assert.ok(row && typeof row.value === 'number' && Number.isFinite(row.value), `cluster: ${metric}`);
    }
    // three masters measured, their shares summing to the whole
    const shards = report.scenarios['meter@cluster'].redis.shards as Array<{ share: number }>;
    assert.is(shards.length, 3);
    assert.ok(Math.abs(shards.reduce((sum, s) => sum + s.share, 0) - 1) < 1e-9);
    assert.is(report.scenarios['meter@one'].redis.shards.length, 1);
    await assertCleanedUp(report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

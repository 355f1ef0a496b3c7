/**
 * `npm test`'s runner: runs every `tests/**\/*.test.ts` with uvu in one child process (under tsx), streams
 * its output, and ends with the one line that CI reads, `N passed, N failed[, N skipped]` alone on its line.
 * uvu's own summary block (Total, Passed, Skipped, Duration) is read but not echoed, so that nothing else near the
 * end looks like a test runner's closing lines; under CI the output is uncoloured.
 *
 *   tsx scripts/run-tests.ts [filter] [uvu flags…]
 *
 * `filter` (a regex) keeps only test files whose path under tests/ matches it; flags such as `-b` (bail)
 * go to uvu as they are. TEST_TIMEOUT_MS (default 40 minutes) bounds the whole run.
 *
 * Two passes: every chosen file on one Redis (127.0.0.1:6379 or TEST_REDIS_URL), then the chosen files of
 * CLUSTER_TESTS again on a private Redis Cluster (3 masters + 3 replicas, scripts/lib/private-redis-cluster.ts) started
 * for the pass and removed after it (TEST_REDIS_CLUSTER_NODES tells the test systems). The counts are the sum of both.
 * TEST_CLUSTER=off skips the second pass.
 *
 * Fails when the machine lacks what the chosen tests need (one line per missing piece: what, and how to get it),
 * when uvu fails, when any test fails, when no test ran, on the timeout, and when the tests finish but the process
 * does not exit (something left a server, socket or timer open).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { missingPrerequisites } from './lib/test-prerequisites.ts';
import { startRedisCluster } from './lib/private-redis-cluster.ts';

/**
 * The files run again on a Redis Cluster: the live state's scripts and indexes, several gateways sharing the live
 * state, processes killed and recovered, the billing queue's partitions.
 */
const CLUSTER_TESTS = /^(gateway\/(live-state(-library)?|outbox-index|recovery|session-flow|exhaustion|cross-gateway-ticks|paused-by-absence)|e2e\/(gateways|billing-crash)|security\/limits)\.test\.ts$/;

const ROOT = path.resolve(import.meta.dirname, '..');
const TESTS_DIR = 'tests';
const TEST_FILE = /\.test\.ts$/;
/** How long the process may take to exit after uvu printed its summary. */
const EXIT_GRACE_MS = 30_000;
/** How long a killed run gets to go after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 5_000;

interface Summary {
  total: number;
  passed: number;
  skipped: number;
}

// This script is a process entry point like gateway/src/main.ts; its one setting is read here, not in the
// service config, which is about the services.
const timeoutMs = parseTimeout(process.env['TEST_TIMEOUT_MS']);
const args = process.argv.slice(2);
const filter = args[0] !== undefined && !args[0].startsWith('-') ? args.shift() : undefined;
const pattern = filter === undefined ? TEST_FILE.source : `^(?=.*(?:${filter})).*${TEST_FILE.source}`;

const files = findTestFiles(pattern);
if (files.length === 0) {
  finish(1, { total: 0, passed: 0, skipped: 0 }, `no test files under ${TESTS_DIR}/ match /${pattern}/`);
} else {
  // what the machine lacks is said once per piece, before any test runs, instead of as a stack trace per test
  const missing = await missingPrerequisites(files);
  if (missing.length > 0) {
    finish(1, undefined, missing.join('\n'));
  } else {
    const clusterFiles = process.env['TEST_CLUSTER'] === 'off' ? [] : files.filter((file) => CLUSTER_TESTS.test(file));
    console.log(`run-tests: ${files.length} test file(s) under ${TESTS_DIR}/, ${clusterFiles.length} of them again on a Redis Cluster, timeout ${timeoutMs} ms`);
    const deadline = Date.now() + timeoutMs;
    const single = await runPass(pattern, {}, deadline);
    let outcome = single;
    if (clusterFiles.length > 0 && single.problem === undefined) {
      console.log(`\nrun-tests: on a Redis Cluster: ${clusterFiles.join(', ')}`);
      const cluster = await startRedisCluster();
      try {
        const onCluster = await runPass(`^(${clusterFiles.map((f) => f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`, { TEST_REDIS_CLUSTER_NODES: cluster.nodeList }, deadline);
        outcome = {
          summary: single.summary && onCluster.summary && {
            total: single.summary.total + onCluster.summary.total,
            passed: single.summary.passed + onCluster.summary.passed,
            skipped: single.summary.skipped + onCluster.summary.skipped,
          },
          problem: onCluster.problem && `on the Redis Cluster: ${onCluster.problem}`,
        };
      } finally {
        await cluster.close();
      }
    }
    finish(outcome.problem === undefined ? 0 : 1, outcome.summary, outcome.problem);
  }
}

/** One uvu run over the files matching `filePattern`, with `extraEnv`; resolves with its counts or what went wrong. */
function runPass(filePattern: string, extraEnv: Record<string, string>, deadline: number): Promise<{ summary: Summary | undefined; problem: string | undefined }> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...extraEnv };
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './tests/support/unhandled-rejections.ts', 'node_modules/uvu/bin.js', TESTS_DIR, filePattern, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env['CI'] ? { ...env, NO_COLOR: '1', FORCE_COLOR: '0' } : env,
      // Its own process group, so a timeout also ends whatever the tests started.
      detached: true,
    });

    let output = '';
    let summary: Summary | undefined;
    let problem: string | undefined;
    let exitTimer: NodeJS.Timeout | undefined;

    const kill = (reason: string) => {
      problem ??= reason;
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };

    let pendingLine = '';
    const echo = (text: string) => {
      const lines = (pendingLine + text).split('\n');
      pendingLine = lines.pop() ?? '';
      for (const line of lines) if (!isUvuSummaryLine(line)) process.stdout.write(`${line}\n`);
    };
    child.stdout.on('data', (data: Buffer) => {
      const text = data.toString('utf8');
      echo(text);
      output += text;
      if (summary === undefined) {
        summary = parseSummary(output);
        if (summary !== undefined) {
          exitTimer = setTimeout(
            () => kill(`the tests finished but the process did not exit within ${EXIT_GRACE_MS} ms (an open handle?)`),
            EXIT_GRACE_MS,
          );
        }
      }
      // Only the summary's tail is needed once the output is long.
      if (output.length > 1_000_000) output = output.slice(-100_000);
    });
    child.stderr.on('data', (data: Buffer) => process.stderr.write(data));

    const overall = setTimeout(() => kill(`timed out after ${timeoutMs} ms (TEST_TIMEOUT_MS)`), Math.max(0, deadline - Date.now()));
    const interrupted = (signal: NodeJS.Signals) => kill(`interrupted by ${signal}`);
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);

    child.on('error', (error) => {
      clearTimeout(overall);
      clearTimeout(exitTimer);
      resolve({ summary: undefined, problem: `could not start uvu: ${error.message}` });
    });
    child.on('close', (code, signal) => {
      if (pendingLine !== '') echo('\n');
      clearTimeout(overall);
      clearTimeout(exitTimer);
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      summary ??= parseSummary(output);
      if (problem === undefined && code !== 0) {
        problem = signal ? `uvu was killed by ${signal}` : `uvu exited with code ${code}`;
      }
      if (problem === undefined && summary !== undefined && summary.passed < summary.total) {
        // uvu swallows an error thrown by a before()/after() hook: the suite's tests simply do not count as passed.
        problem = `${summary.total - summary.passed} test(s) did not pass although uvu reported no failure: a failing before()/after() hook?`;
      }
      resolve({ summary, problem });
    });
  });
}

function finish(code: number, summary: Summary | undefined, problem: string | undefined): void {
  const total = summary?.total ?? 0;
  const passed = summary?.passed ?? 0;
  const skipped = summary?.skipped ?? 0;
  // uvu's Total counts the tests it ran, skipped ones not included.
  const failed = Math.max(0, total - passed);
  const reasons = [
    ...(problem ? problem.split('\n') : []),
    ...(summary === undefined && problem === undefined ? ['uvu printed no summary'] : []),
    ...(summary !== undefined && total === 0 && !problem ? ['no test ran'] : []),
  ];
  for (const reason of reasons) console.error(`run-tests: ${reason}`);
  if (summary !== undefined) console.log(`run-tests: uvu ran ${total} test(s), ${skipped} skipped`);
  console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  process.exitCode = code !== 0 || reasons.length > 0 || failed > 0 ? 1 : 0;
}

function isUvuSummaryLine(line: string): boolean {
  return /^\s*(Total|Passed|Skipped|Duration):/.test(line.replace(/\u001b\[[0-9;]*m/g, ''));
}

function parseSummary(text: string): Summary | undefined {
  // uvu always colours its output; the counts sit between colour codes.
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  const match = /Total:\s+(\d+)\s+Passed:\s+(\d+)\s+Skipped:\s+(\d+)/.exec(plain);
  if (!match) return undefined;
  return { total: Number(match[1]), passed: Number(match[2]), skipped: Number(match[3]) };
}

function findTestFiles(source: string): string[] {
  const matcher = new RegExp(source, 'i'); // as uvu reads the pattern
  return readdirSync(path.join(ROOT, TESTS_DIR), { recursive: true, encoding: 'utf8' })
    .map((file) => file.split(path.sep).join('/'))
    .filter((file) => matcher.test(file))
    .sort();
}

function parseTimeout(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 40 * 60_000;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`run-tests: TEST_TIMEOUT_MS must be a positive integer of milliseconds, not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

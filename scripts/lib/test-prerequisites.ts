/**
 * What `npm test` needs from the machine, checked before any test runs: Postgres and Redis answering, Debian's
 * Chromium for the browser tests, `redis-server` for the tests that start their own Redis, PostgreSQL's server
 * binaries for the chaos run's private cluster. Each missing piece is one line saying what is missing and how to get
 * it (`.ci/run` installs and starts them all).
 */
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';

export interface Prerequisite {
  /** What needs it, as a regex over test file paths under tests/ (every file when absent). */
  neededBy?: RegExp;
  /** Resolves undefined when present, else the one line saying what is missing and how to get it. */
  check(): Promise<string | undefined>;
}

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

function answers(url: string, defaultPort: number, timeoutMs = 2000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname || '127.0.0.1', port: Number(port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && existsSync(path.join(dir, command)));
}

function postgresBinaries(): boolean {
  const root = '/usr/lib/postgresql';
  if (onPath('initdb') && onPath('pg_ctl')) return true;
  return existsSync(root) && readdirSync(root).some((version) => existsSync(path.join(root, version, 'bin', 'initdb')));
}

export const TEST_PREREQUISITES: Prerequisite[] = [
  {
    async check() {
      const url = process.env.TEST_DATABASE_URL || DEFAULT_DATABASE_URL;
      if (await answers(url, 5432)) return undefined;
      return `missing: Postgres answering at ${new URL(url).host} (TEST_DATABASE_URL) — apt-get install postgresql, then pg_ctlcluster <version> main start (or run .ci/run)`;
    },
  },
  {
    async check() {
      const url = process.env.TEST_REDIS_URL || DEFAULT_REDIS_URL;
      if (await answers(url, 6379)) return undefined;
      return `missing: Redis answering at ${new URL(url).host} (TEST_REDIS_URL) — apt-get install redis-server, then redis-server --daemonize yes (or run .ci/run)`;
    },
  },
  {
    neededBy: /^(browser\/|security\/(handshake|injection))/,
    async check() {
      const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
      if (existsSync(chromium)) return undefined;
      return `missing: Chromium at ${chromium} (CHROMIUM_PATH), for the browser tests — apt-get install chromium (no browser is ever downloaded)`;
    },
  },
  {
    neededBy: /^(e2e\/(redis-flush|npm-start-embedded)|chaos\/)/,
    async check() {
      if (onPath('redis-server')) return undefined;
      return 'missing: redis-server on PATH, for the tests that start their own Redis — apt-get install redis-server';
    },
  },
  {
    neededBy: /^chaos\//,
    async check() {
      if (postgresBinaries()) return undefined;
      return "missing: PostgreSQL's server binaries (initdb, pg_ctl), for the chaos run's private cluster — apt-get install postgresql";
    },
  },
];

/** The lines of what the given test files (paths under tests/) need and the machine lacks. */
export async function missingPrerequisites(files: readonly string[]): Promise<string[]> {
  const needed = TEST_PREREQUISITES.filter((p) => !p.neededBy || files.some((file) => p.neededBy!.test(file)));
  const lines = await Promise.all(needed.map((p) => p.check()));
  return lines.filter((line): line is string => line !== undefined);
}

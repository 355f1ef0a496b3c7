/**
 * A private PostgreSQL cluster for the chaos run, which restarts it with `pg_ctl restart -m immediate` (a crash:
 * no checkpoint, WAL replay on start): `initdb` and `pg_ctl` from the machine's PostgreSQL binaries, a temporary
 * data directory, a spare port, trust authentication on 127.0.0.1. As root the server runs as the `postgres` user
 * (PostgreSQL refuses root). `close()` stops it and removes the directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** `pg_ctl restart -m immediate`: every backend dies at once; committed transactions survive (WAL). */
  crashRestart(): Promise<void>;
  close(): Promise<void>;
}

/** The newest PostgreSQL's binaries: `pg_config --bindir`, else /usr/lib/postgresql/<newest>/bin. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const dir = path.join(root, version, 'bin');
      if (existsSync(path.join(dir, 'initdb'))) return dir;
    }
  }
  throw new Error('no PostgreSQL server binaries found (apt install postgresql)');
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = binDir();
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const as = (command: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args]) : run(path.join(bin, command), args);
  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  const ctl = (...args: string[]) => as('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', ...args]);
  await ctl('-o', options, 'start');
  let closed = false;
  const stop = () => {
    if (closed) return;
    try {
      // synchronous: also from a process 'exit' handler
      const args = ['-D', data, '-m', 'immediate', 'stop'];
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, 'pg_ctl'), ...args], { stdio: 'ignore' });
      else execFileSync(path.join(bin, 'pg_ctl'), args, { stdio: 'ignore' });
    } catch {
      // already stopped
    }
  };
  process.on('exit', stop);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    crashRestart: async () => {
      await ctl('-m', 'immediate', '-o', options, 'restart');
    },
    close: async () => {
      stop();
      closed = true;
      process.off('exit', stop);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

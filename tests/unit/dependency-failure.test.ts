import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { Redis } from 'ioredis';
import { errorCause, toWireError } from '#shared/errors/app-error.ts';
import { dependencyFailure } from '#shared/errors/dependency-failure.ts';
import { freePort } from '../../scripts/lib/free-port.ts';
import { testDatabaseBaseUrl } from '../support/database.ts';

// The errors are the real drivers' own, raised by real failures: a port nobody listens on, a backend terminated
// under its client. A request that met one did nothing and may be retried: `unavailable`, never `internal`.
const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
};

test('Postgres refusing connections, and a backend terminated mid-session, are `postgres` failures', async () => {
  const closedPort = await freePort();
  const refused = await caught(() => new pg.Client({ host: '127.0.0.1', port: closedPort, user: 'postgres' }).connect());
  assert.is(dependencyFailure(refused), 'postgres');

  const client = new pg.Client({ connectionString: testDatabaseBaseUrl() });
  client.on('error', () => undefined);
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const admin = new pg.Client({ connectionString: testDatabaseBaseUrl() });
  await admin.connect();
  await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
  await admin.end();
  const terminated = await caught(async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.query('select 1');
  });
  assert.is(dependencyFailure(terminated), 'postgres', String(terminated));
  await client.end().catch(() => undefined);

  // a server starting up answers a new connection 57P03, as a DatabaseError (whose `name` is pg's 'error')
  const starting = Object.assign(new Error('the database system is starting up'), { name: 'error', code: '57P03', severity: 'FATAL' });
  assert.is(dependencyFailure(starting), 'postgres');

  const wire = toWireError(refused);
  assert.is(wire.code, 'unavailable');
  assert.ok(typeof wire.retryAfterMs === 'number' && wire.retryAfterMs > 0);
  assert.is(errorCause(refused), 'postgres_unavailable');
});

test('Redis not answering is a `redis` failure', async () => {
  const closedPort = await freePort();
  const redis = new Redis({ host: '127.0.0.1', port: closedPort, maxRetriesPerRequest: 0, retryStrategy: () => 50, lazyConnect: false });
  redis.on('error', () => undefined);
  const error = await caught(() => redis.get('k'));
  redis.disconnect();
  assert.is(dependencyFailure(error), 'redis', String(error));
  const offline = new Redis({ host: '127.0.0.1', port: closedPort, enableOfflineQueue: false, lazyConnect: true });
  offline.on('error', () => undefined);
  const notWritable = await caught(() => offline.get('k'));
  offline.disconnect();
  assert.is(dependencyFailure(notWritable), 'redis', String(notWritable));
});

test('errors of the request or of the code are no dependency failure: they stay `internal`', async () => {
  const client = new pg.Client({ connectionString: testDatabaseBaseUrl() });
  await client.connect();
  const syntax = await caught(() => client.query('selec 1'));
  await client.end();
  assert.is(dependencyFailure(syntax), undefined);
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const key = `dependency-failure-test:${process.pid}`;
  await redis.set(key, 'x', 'PX', 10_000);
  const wrongType = await caught(() => redis.hget(key, 'f'));
  redis.disconnect();
  assert.is(dependencyFailure(wrongType), undefined);
  assert.is(dependencyFailure(new TypeError('x is undefined')), undefined);
  assert.is(toWireError(new Error('boom')).code, 'internal');
  assert.is(errorCause(new TypeError('x')), 'TypeError');
});

test.run();

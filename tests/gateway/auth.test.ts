import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { createUser, startSystem, type TestSystem } from '../support/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem();
});
test.after(async () => {
  await system?.close();
});

async function rejection(auth: Record<string, unknown>): Promise<string> {
  try {
    const client = await system.connect(randomUUID(), auth);
    client.disconnect();
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  }
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('a valid token connects and records last_login', async () => {
  const userId = await createUser(system);
  const client = await system.connect(userId);
  assert.ok(client.connected);
  const row = await system.database.db.selectFrom('user_profiles').select('last_login').where('id', '=', userId).executeTakeFirstOrThrow();
  assert.ok(row.last_login instanceof Date);
  client.disconnect();
});

test('no token is unauthorized', async () => {
  assert.is(await rejection({}), 'unauthorized');
});

test('a token signed with another secret is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { secret: 'another-secret-0123456789-0123456789-xyz' }) }), 'unauthorized');
});

test('an unsigned alg:none token is unauthorized', async () => {
  const userId = await createUser(system);
  const now = Math.floor(Date.now() / 1000);
  const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: userId, aud: 'authenticated', exp: now + 3600 })}.`;
  assert.is(await rejection({ token }), 'unauthorized');
});

test('an expired token is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { expiresIn: '-10s' }) }), 'unauthorized');
});

test('a token for another audience is unauthorized', async () => {
  const userId = await createUser(system);
  assert.is(await rejection({ token: await system.token(userId, { audience: 'someone-else' }) }), 'unauthorized');
});

test('a valid token of an unknown user is unauthorized', async () => {
  assert.is(await rejection({ token: await system.token(randomUUID()) }), 'unauthorized');
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import type { KyselyPlugin } from 'kysely';
import { LoginRecorder } from '#gateway/transport/login-recorder.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createUser } from '../support/processes.ts';

let t: TestDatabase;
test.before(async () => {
  t = await createTestDatabase();
});
test.after(async () => {
  await t?.drop();
});

/** The database handle, counting the statements sent through it. */
function counted() {
  const counter = { statements: 0 };
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      counter.statements += 1;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  return { db: t.db.withPlugin(plugin), counter };
}

const lastLogin = async (id: string) =>
  (await t.db.selectFrom('user_profiles').select('last_login').where('id', '=', id).executeTakeFirstOrThrow()).last_login;

test('handshakes arriving together share one statement; each learns whether its user exists', async () => {
  const { db, counter } = counted();
  const recorder = new LoginRecorder(db);
  const known = await Promise.all(Array.from({ length: 40 }, () => createUser(t.db)));
  const unknown = Array.from({ length: 10 }, () => randomUUID());
  // ids come canonical (lower-case) from the token verifier (tests/security/handshake.test.ts checks an upper-case sub)
  const ids = [...known, ...unknown, known[0]!, known[1]!];
  const answers = await Promise.all(ids.map((id) => recorder.record(id)));
  assert.equal(answers, [...known.map(() => true), ...unknown.map(() => false), true, true]);
  assert.is(counter.statements, 1, 'one statement for 52 handshakes');
  for (const id of known) assert.ok((await lastLogin(id)) instanceof Date, 'last_login recorded');
});

test('last_login is rewritten only when older than refreshMs, and a deleted user is refused at once', async () => {
  const userId = await createUser(t.db);
  const recorder = new LoginRecorder(t.db, { refreshMs: 60_000 });
  assert.ok(await recorder.record(userId));
  const first = await lastLogin(userId);
  assert.ok(await recorder.record(userId));
  assert.equal(await lastLogin(userId), first, 'a reconnect within the minute reads, it does not write');
  const eager = new LoginRecorder(t.db, { refreshMs: 0 });
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(await eager.record(userId));
  assert.ok((await lastLogin(userId))!.getTime() > first!.getTime(), 'older than refreshMs: rewritten');
  await t.db.deleteFrom('user_profiles').where('id', '=', userId).execute();
  assert.is(await recorder.record(userId), false, 'existence is never cached');
});

test('batches are capped, and handshakes arriving during a statement go in the next one', async () => {
  const { db, counter } = counted();
  const recorder = new LoginRecorder(db, { maxBatch: 10 });
  const users = await Promise.all(Array.from({ length: 25 }, () => createUser(t.db)));
  const answers = await Promise.all(users.map((id) => recorder.record(id)));
  assert.ok(answers.every(Boolean));
  assert.is(counter.statements, 3, '25 users, 10 at most per statement');
});

test.run();

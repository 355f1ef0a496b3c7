/**
 * LiveKit webhook forgeries beyond tests/livekit/rooms.test.ts (unsigned, another secret, tampered): a captured
 * signature replayed over another event's body, a token signed with the right secret under another API key, an
 * expired one, one without `exp`, an unsigned `alg: none` one, and a body over the route's limit. Every one is refused
 * and the session's meter does not move; the genuine webhook is then accepted, so the refusals were about the forgery.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import { userKeys } from '#shared/live-state/keys.ts';
import { signedWebhook, TEST_LIVEKIT_KEY, TEST_LIVEKIT_SECRET, type WebhookSpec } from '../support/livekit.ts';
import { request, startedCall, startSystem, type TestSystem } from '../support/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startSystem();
});
test.after(async () => {
  await system?.close();
});

async function post(body: string, authorization?: string): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${system.url}/livekit/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/webhook+json', ...(authorization ? { authorization } : {}) },
    body,
  });
  const text = await response.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: response.status, code };
}

const sha256 = (body: string) => createHash('sha256').update(body).digest('base64');
const secretKey = new TextEncoder().encode(TEST_LIVEKIT_SECRET);
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('forged webhooks are refused 401 and move nothing; the genuine one is accepted', async () => {
  const { userId, client, session, room } = await startedCall(system, '50.0000', '6.0000');
  const sessionId = session.id;
  const keys = userKeys(system.config.REDIS_PREFIX, userId);
  const live = () => system.redis.hgetall(keys.session(sessionId));
  const before = await live();

  const join: WebhookSpec = { event: 'participant_joined', room, identity: userId, joinedAtMs: Date.now() };
  const genuine = await signedWebhook(join);
  const finished = await signedWebhook({ event: 'room_finished', room });
  const now = Math.floor(Date.now() / 1000);
  const forgeries: Record<string, { body: string; authorization: string }> = {
    // the join's signature over the room_finished body (a captured header replayed with another event)
    'a signature replayed over another event': { body: finished.body, authorization: genuine.authorization },
    'the right secret under another API key': { body: genuine.body, authorization: (await signedWebhook(join, TEST_LIVEKIT_SECRET, 'another-key')).authorization },
    'an expired signature': {
      body: genuine.body,
      authorization: await new SignJWT({ sha256: sha256(genuine.body) }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_LIVEKIT_KEY).setExpirationTime(now - 3600).sign(secretKey),
    },
    'a signature without exp': {
      body: genuine.body,
      authorization: await new SignJWT({ sha256: sha256(genuine.body) }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_LIVEKIT_KEY).sign(secretKey),
    },
    'an unsigned alg:none token': {
      body: genuine.body,
      authorization: `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: TEST_LIVEKIT_KEY, sha256: sha256(genuine.body), exp: now + 600 })}.`,
    },
    'the genuine signature with a character appended': { body: genuine.body, authorization: `${genuine.authorization}x` },
  };
  for (const [what, forgery] of Object.entries(forgeries)) {
    assert.equal(await post(forgery.body, forgery.authorization), { status: 401, code: 'unauthorized' }, what);
  }

  // over the route's 256 KiB limit, even correctly signed: refused before anything is read into the meter
  const huge = JSON.stringify({ ...JSON.parse(genuine.body), padding: 'x'.repeat(300 * 1024) });
  const hugeSigned = await new SignJWT({ sha256: sha256(huge) }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TEST_LIVEKIT_KEY).setExpirationTime(now + 600).sign(secretKey);
  const tooLarge = await post(huge, hugeSigned);
  assert.is(tooLarge.status, 413);

  assert.equal(await live(), before, 'the session is untouched');
  assert.is(await system.redis.exists(keys.webhookIds(sessionId)), 0, 'no webhook event recorded');

  // the clone's agent in the room (its own genuine webhook), then the user's genuine join: a conversation, metered
  const agentJoin = await signedWebhook({ event: 'participant_joined', room, identity: `agent-${sessionId}`, joinedAtMs: Date.now() });
  assert.equal(await post(agentJoin.body, agentJoin.authorization), { status: 200, code: undefined }, 'the agent\'s join');
  assert.equal(await post(genuine.body, genuine.authorization), { status: 200, code: undefined }, 'the genuine webhook');
  assert.is((await live()).status, 'active');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  client.disconnect();
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { userKeys } from '#shared/live-state/keys.ts';
import { postWebhook, type WebhookSpec } from '../support/livekit.ts';
import { request, startedCall, startSystem, waitFor, type TestSystem } from '../support/system.ts';

// LiveKit's clock against Redis's: every webhook's skew is measured and exposed in /metrics, and an instant further
// than WEBHOOK_SKEW_MS from Redis time at receipt is not trusted — the event applies at its receipt, and is logged.
let system: TestSystem;
test.before(async () => {
  system = await startSystem({ env: { WEBHOOK_SKEW_MS: '2000', LIVEKIT_TOKEN_TTL: '600' } });
});
test.after(async () => {
  await system?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hook = async (spec: WebhookSpec) => assert.is(await postWebhook(system.url, spec), 200);
const settled = (sessionId: string) =>
  waitFor(() => system.database.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${system.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

async function voiceSession(credits = '50.0000') {
  const { userId, client, session, room } = await startedCall(system, credits, '60.0000');
  // the clone's agent is in the room: the user's join starts the conversation
  await hook({ event: 'participant_joined', room, identity: `agent-${session.id}`, participantSid: 'PA_agent', joinedAtMs: Date.now() });
  return { userId, client, sessionId: session.id, room };
}

test('a leave stamped a minute behind Redis time (LiveKit\'s clock late) pauses at its receipt: the time in the room is charged', async () => {
  const countBefore = await metric('gateway_livekit_webhook_skew_seconds_count');
  const atReceiptBefore = await metric('gateway_livekit_webhooks_at_receipt_total');
  const { userId, client, sessionId, room } = await voiceSession();
  const joinedAt = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_1', joinedAtMs: joinedAt });
  await sleep(1500);
  const receivedAt = Date.now();
  // without the bound, a leave "a minute ago" would pause at the session's last change: 1.5 s in the room for free
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_1', at: receivedAt - 60_000 });
  const live = await system.redis.hgetall(userKeys(system.config.REDIS_PREFIX, userId).session(sessionId));
  assert.is(live.status, 'paused');
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const row = await settled(sessionId);
  const activeMs = Number(row.active_ms);
  assert.ok(activeMs >= receivedAt - joinedAt - 50 && activeMs <= Date.now() - joinedAt, `active ${activeMs} ms, in the room ${receivedAt - joinedAt} ms`);
  assert.is(await metric('gateway_livekit_webhook_skew_seconds_count'), countBefore + 3, 'every webhook measured (the agent\'s join too)');
  assert.is(await metric('gateway_livekit_webhooks_at_receipt_total'), atReceiptBefore + 1, 'the skewed one counted');
  client.disconnect();
});

test('a join stamped half a minute early does not charge the wait for it; one within the bound keeps its own instant', async () => {
  const { userId, client, sessionId, room } = await voiceSession();
  await sleep(800); // waiting for the join is free
  const receivedAt = Date.now();
  await hook({ event: 'participant_joined', room, identity: userId, participantSid: 'PA_1', joinedAtMs: receivedAt - 30_000 });
  await sleep(2500);
  // within the bound: a leave stamped 1 s before its receipt applies at its own (second-floored) instant
  const leftAt = Date.now() - 1000;
  await hook({ event: 'participant_left', room, identity: userId, participantSid: 'PA_1', at: leftAt });
  assert.ok((await request(client, 'session:end', { sessionId })).ok);
  const row = await settled(sessionId);
  const activeMs = Number(row.active_ms);
  // joined at receipt (not 30 s, nor the 0.8 s wait, before); left at its stamped second
  const expected = Math.floor(leftAt / 1000) * 1000 - receivedAt;
  assert.ok(expected > 0);
  assert.ok(Math.abs(activeMs - expected) <= 60, `active ${activeMs} ms, expected ≈ ${expected} ms`);
  client.disconnect();
});

test.run();

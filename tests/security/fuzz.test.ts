/**
 * Hostile payloads, generated with fast-check from a printed seed (replay with FUZZ_SEED=<seed>): for every client
 * event and every `/agent` event, PAYLOADS_PER_EVENT malformed payloads (wrong types, missing and extra fields,
 * huge strings, unicode, prototype-pollution keys, nested objects and arrays, numbers as strings, ids that are not
 * canonical uuids — including near misses of the user's own session ids), sent in batches with acks awaited; and
 * garbage bodies to the LiveKit webhook route. Each must be answered with a refusal (`invalid_payload`, or
 * `not_found` for a well-formed id that is nobody's), the process must stay up, nothing may change: Postgres rows,
 * the user's credits, the Redis live state, Object.prototype.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { sql } from 'kysely';
import { io, type Socket } from 'socket.io-client';
import { signAgentToken } from '#shared/auth/agent-token.ts';
import { AGENT_NAMESPACE } from '#shared/contract/agent-events.ts';
import { signedWebhook, TEST_LIVEKIT_KEY, TEST_LIVEKIT_SECRET } from '../support/livekit.ts';
import { seedFrom } from '../../scripts/lib/seeded-random.ts';
import { createClone, createUser, nextEvent, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

const PAYLOADS_PER_EVENT = Number(process.env.FUZZ_PAYLOADS ?? 10_000);
const WEBHOOK_BODIES = Number(process.env.FUZZ_WEBHOOKS ?? 2_000);
const BATCH = 500;
// a new seed every run unless FUZZ_SEED is given (printed below, and in every failure message, to replay it)
const SEED = seedFrom('FUZZ_SEED');
/** Frames above 64 KiB close the socket (tests/security/limits.test.ts); every generated payload stays below. */
const MAX_FRAME_BYTES = 60_000;

const CLIENT_EVENTS = ['session:start', 'session:pause', 'session:resume', 'session:end', 'session:get', 'session:token', 'message:send', 'session:history', 'session:rate'] as const;
const AGENT_EVENTS = ['agent:claim', 'agent:release', 'agent:utterance', 'agent:interrupt'] as const;

let system: TestSystem;
let userId: string;
let client: TestClient;
/** Voice agents' sockets by event: each may send 2000 events at once (then 1000/s), so each event gets several. */
const agents = new Map<string, Socket[]>();
const AGENT_BURST = 2000;
/** The user's own sessions: a paused chat with messages, an ended and settled chat, a voice session nobody joined. */
const own: { paused: string; ended: string; voice: string } = { paused: '', ended: '', voice: '' };
const counts = new Map<string, Map<string, number>>();
let generationMs = 0;

test.before(async () => {
  console.log(`  fuzz seed: ${SEED} (replay: FUZZ_SEED=${SEED}), ${PAYLOADS_PER_EVENT} payloads per event`);
  system = await startSystem({
    env: {
      // every payload is judged, none rate limited
      EVENTS_PER_SECOND: '100000000',
      EVENT_BURST: '100000000',
      MESSAGE_RATE_PER_MIN: '100000000',
      // nothing due during the run: the state only changes if a payload changes it
      IDLE_PAUSE_MS: '3600000',
      PAUSED_END_MS: '3600000',
      JOIN_TIMEOUT_MS: '3600000',
    },
    openai: { reply: () => 'A short reply.' },
  });
  userId = await createUser(system, '100.0000');
  const { cloneId } = await createClone(system, '1.0000');
  client = await system.connect(userId);
  const ok = <T extends { ok: boolean }>(answer: T) => {
    if (!answer.ok) throw new Error(JSON.stringify(answer));
    return answer as Extract<T, { ok: true }>;
  };
  own.ended = ok(await request(client, 'session:start', { cloneId, type: 'chat' })).session.id;
  ok(await request(client, 'session:end', { sessionId: own.ended }));
  own.paused = ok(await request(client, 'session:start', { cloneId, type: 'chat' })).session.id;
  const replied = nextEvent(client, 'message:completed', (c) => c.sessionId === own.paused && c.message.senderType === 'ai');
  ok(await request(client, 'message:send', { sessionId: own.paused, clientMessageId: 'first', content: 'hello' }));
  await replied;
  ok(await request(client, 'session:pause', { sessionId: own.paused }));
  own.voice = ok(await request(client, 'session:start', { cloneId, type: 'voice' })).session.id;
  // everything recorded before the "before" snapshot
  await waitFor(() => system.database.db.selectFrom('sessions').select('id').where('id', '=', own.ended).where('settled_at', 'is not', null).executeTakeFirst(), 10_000, 'settlement');
  await waitFor(async () => {
    const jobs = await system.queue.getJobCounts('waiting', 'active', 'delayed');
    return (jobs.waiting ?? 0) + (jobs.active ?? 0) + (jobs.delayed ?? 0) === 0;
  }, 10_000, 'an idle queue');
  await waitFor(async () => {
    const row = await system.database.db.selectFrom('sessions').select(['status', 'message_count']).where('id', '=', own.paused).executeTakeFirst();
    return row?.status === 'paused' && row.message_count === 2;
  }, 10_000, 'the paused session recorded');

  const token = await signAgentToken({ secret: system.config.JWT_SECRET, audience: system.config.JWT_AUDIENCE, agentId: 'fuzzer' });
  for (const event of AGENT_EVENTS) {
    const sockets: Socket[] = [];
    agents.set(event, sockets);
    for (let i = 0; i < Math.ceil(PAYLOADS_PER_EVENT / AGENT_BURST); i++) {
      const agent = io(`${system.url}${AGENT_NAMESPACE}`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
      sockets.push(agent);
      await new Promise<void>((resolve, reject) => {
        agent.once('connect', () => resolve());
        agent.once('connect_error', reject);
      });
    }
  }
});

test.after(async () => {
  for (const agent of [...agents.values()].flat()) agent.disconnect();
  for (const [event, byCode] of counts) console.log(`  ${event}: ${[...byCode].map(([c, n]) => `${n} ${c}`).join(', ')}`);
  await system?.close();
});

// ---- generators --------------------------------------------------------------------------------------------------

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'polluted'];

/** An object with `extra` as own, enumerable properties (so `__proto__` is a key on the wire, not a prototype). */
function withOwn(base: unknown, extra: Record<string, unknown>): unknown {
  const target = base !== null && typeof base === 'object' && !Array.isArray(base) ? { ...(base as object) } : {};
  for (const [key, value] of Object.entries(extra)) Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}

const pollutionObject = fc.constantFrom(
  JSON.parse('{"__proto__": {"polluted": "yes", "isAdmin": true}}'),
  JSON.parse('{"constructor": {"prototype": {"polluted": "yes"}}}'),
  JSON.parse('{"__proto__": {"__proto__": {"polluted": "yes"}}}'),
);

const oddString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.constantFrom('', ' ', '\u0000', 'null', 'undefined', 'NaN', 'true', '[object Object]', "' OR '1'='1' --", '"; DROP TABLE sessions; --',
    '<script>alert(1)</script>', '${7*7}', '{{7*7}}', '../../etc/passwd', '\u202eevil', '\ud800', '\uffff', '🧨'.repeat(100)),
  fc.integer().map(String),
  fc.double().map(String),
);
/** Long strings, built by repeating a generated piece (generating 50 000 characters one by one would be slow). */
const hugeString = fc.oneof(
  fc.tuple(fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 16 }), fc.integer({ min: 300, max: 3_000 })).map(([piece, times]) => piece.repeat(times).slice(0, 50_000)),
  fc.tuple(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), fc.integer({ min: 200, max: 1_000 })).map(([piece, times]) => piece.repeat(times).slice(0, 12_000)),
  fc.nat({ max: 50_000 }).map((n) => 'x'.repeat(n)),
);
const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), oddString), { maxLength: 5 }),
  fc.object({ maxDepth: 3, maxKeys: 4 }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  pollutionObject,
);

/** Well-formed ids that are nobody's: answered `not_found` (or refused by the schema). */
const strangerUuid = fc.uuid();
/** Ids that are not canonical uuids, some of them near misses of the user's own session ids. */
const ownIdNearMiss = fc.tuple(fc.constantFrom(() => own.paused, () => own.ended, () => own.voice), fc.nat({ max: 7 })).map(([id, how]) => {
  const value = id();
  return [value.toUpperCase(), ` ${value}`, `${value} `, `${value}0`, value.slice(0, -1), value.replaceAll('-', ''), `{${value}}`, `${value}\u0000`][how]!;
});
const notUuid = fc.oneof(ownIdNearMiss, fc.uuid().map((u) => u.toUpperCase()), fc.uuid().map((u) => u.replaceAll('-', '')), oddString, hugeString);
const anyId = fc.oneof({ weight: 2, arbitrary: strangerUuid }, { weight: 4, arbitrary: notUuid }, { weight: 2, arbitrary: wrongType });
const anyText = (max: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: Math.min(max, 100) }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: max + 1, maxLength: max + 50 }) },
    { weight: 2, arbitrary: oddString },
    { weight: 1, arbitrary: hugeString },
    { weight: 2, arbitrary: wrongType },
  );
const anyRating = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer(), fc.double(), fc.integer({ min: 1, max: 5 }).map(String), wrongType);
const anyType = fc.oneof(fc.constantFrom('chat', 'voice', 'video'), fc.constantFrom('CHAT', 'Voice', 'fax', 'chat '), oddString, wrongType);

const FIELDS: Record<string, Record<string, fc.Arbitrary<unknown>>> = {
  'session:start': { cloneId: anyId, type: anyType },
  'message:send': { sessionId: anyId, clientMessageId: anyText(64), content: anyText(4000) },
  'session:history': { sessionId: anyId, afterMessageId: anyId },
  'session:rate': { sessionId: anyId, rating: anyRating, feedback: anyText(4000) },
  'agent:utterance': { sessionId: anyId, clientMessageId: anyText(64), content: anyText(4000) },
};
const fieldsOf = (event: string) => FIELDS[event] ?? { sessionId: anyId };

/** The argument lists an event is sent with (before the ack): usually one payload, sometimes none or several. */
function argumentsFor(event: string): fc.Arbitrary<unknown[]> {
  const fields = fieldsOf(event);
  const record = fc.record(fields, { requiredKeys: [] });
  const extras = fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 20 })), fc.oneof(wrongType, oddString), { minKeys: 1, maxKeys: 3 });
  const payload = fc.oneof(
    { weight: 4, arbitrary: record },
    { weight: 3, arbitrary: fc.tuple(record, extras).map(([base, extra]) => withOwn(base, extra)) },
    { weight: 2, arbitrary: fc.anything({ maxDepth: 3, maxKeys: 5, withBoxedValues: false, withNullPrototype: true, withObjectString: true, withSparseArray: true, withTypedArray: true, withDate: true, withMap: true, withSet: true }) },
    { weight: 1, arbitrary: fc.tuple(record, pollutionObject).map(([base, pollution]) => withOwn(base, pollution as Record<string, unknown>)) },
    { weight: 1, arbitrary: record.map((r) => [r]) },
    { weight: 1, arbitrary: record.map((r) => JSON.stringify(r)) },
  );
  return fc
    .oneof(
      { weight: 10, arbitrary: payload.map((p): unknown[] => [p]) },
      { weight: 1, arbitrary: fc.constant(null).map((): unknown[] => []) },
      { weight: 1, arbitrary: fc.tuple(payload, wrongType).map((args): unknown[] => [...args]) },
    )
    .filter((args) => frameBytes(args) < MAX_FRAME_BYTES);
}

function frameBytes(args: unknown[]): number {
  try {
    return Buffer.byteLength(JSON.stringify(args, (_key, value: unknown) => (Buffer.isBuffer(value) ? value.toString('base64') : value)) ?? '');
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

// ---- sending and answers -------------------------------------------------------------------------------------------

interface Answer {
  ok?: boolean;
  claimed?: boolean;
  error?: { code?: string };
}

/** What an answer says, as one word: the error code, `ok`, or `claimed:false`. */
function outcome(answer: Answer | undefined): string {
  if (!answer || typeof answer !== 'object') return 'no answer';
  if (answer.ok === false) return answer.error?.code ?? 'error without a code';
  if (answer.ok === true) return answer.claimed === false ? 'claimed:false' : Object.keys(answer).length === 1 ? 'ok' : `ok with ${Object.keys(answer).join(',')}`;
  return 'malformed answer';
}

const ALLOWED: Record<string, string[]> = {
  'agent:claim': ['invalid_payload', 'claimed:false'],
  'agent:release': ['invalid_payload', 'ok'],
  'agent:utterance': ['invalid_payload', 'forbidden'],
  'agent:interrupt': ['invalid_payload', 'forbidden'],
};
const allowedFor = (event: string) => ALLOWED[event] ?? ['invalid_payload', 'not_found'];

/** Sends PAYLOADS_PER_EVENT generated argument lists as `event`, a batch at a time over `sockets` in turn. */
async function fuzz(sockets: Socket[], event: string, eventSeed: number): Promise<void> {
  const generatedAt = Date.now();
  const samples = fc.sample(argumentsFor(event), { seed: eventSeed, numRuns: PAYLOADS_PER_EVENT });
  generationMs += Date.now() - generatedAt;
  const byCode = new Map<string, number>();
  counts.set(event, byCode);
  const wrong: string[] = [];
  for (let start = 0; start < samples.length; start += BATCH) {
    const batch = samples.slice(start, start + BATCH);
    const socket = sockets[(start / BATCH) % sockets.length]!;
    const answers = await Promise.all(
      batch.map(
        (args) =>
          new Promise<string>((resolve) => {
            (socket.timeout(30_000) as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args, (error: Error | null, answer: Answer) =>
              resolve(error ? 'no answer' : outcome(answer)),
            );
          }),
      ),
    );
    answers.forEach((answer, index) => {
      byCode.set(answer, (byCode.get(answer) ?? 0) + 1);
      if (!allowedFor(event).includes(answer) && wrong.length < 5) {
        wrong.push(`${answer} for ${event} ${JSON.stringify(batch[index]).slice(0, 300)}`);
      }
    });
    assert.ok(socket.connected, `${event}: the socket was closed during batch ${start / BATCH} (seed ${eventSeed})`);
  }
  assert.equal(wrong, [], `${event} (seed ${eventSeed}): unexpected answers`);
  assert.is([...byCode.values()].reduce((a, b) => a + b, 0), PAYLOADS_PER_EVENT);
}

// ---- what must not change ----------------------------------------------------------------------------------------

/** Every table's rows (a digest of each, and the count), and the user's credits. */
async function postgresState(): Promise<Record<string, string>> {
  const tables = await sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public' order by tablename`.execute(system.database.db);
  const state: Record<string, string> = {};
  for (const { tablename } of tables.rows) {
    const { rows } = await sql<{ n: string; digest: string | null }>`select count(*)::text as n, md5(string_agg(t::text, '|' order by t::text)) as digest from ${sql.table(tablename)} t`.execute(system.database.db);
    state[tablename] = `${rows[0]!.n} rows ${rows[0]!.digest ?? ''}`;
  }
  const user = await system.database.db.selectFrom('user_profiles').select(['credits_remaining', 'total_spent']).where('id', '=', userId).executeTakeFirstOrThrow();
  state.credits = `${user.credits_remaining} / spent ${user.total_spent}`;
  return state;
}

/**
 * Every live key under the test's prefix and its content, but for what moves with time alone: the account's meter
 * cursor, presence sightings (every request is a sighting), the due schedule and its leases (when the next check is
 * due is recomputed at each advance), connection leases, the Socket.IO adapter's stream and sessions, and the
 * billing queue's bookkeeping.
 */
async function redisState(): Promise<Record<string, unknown>> {
  const prefix = system.config.REDIS_PREFIX;
  const volatile = [/:socket\.io$/, /:sio:session:/, /:\{bull:\d+\}:/, /:conns$/, /:presence$/, /:\{due:\d+\}/, /:outboxes:scanned$/];
  const state: Record<string, unknown> = {};
  let cursor = '0';
  do {
    const [next, keys] = await system.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      if (volatile.some((pattern) => pattern.test(key))) continue;
      const type = await system.redis.type(key);
      if (type === 'hash') {
        const hash = await system.redis.hgetall(key);
        if (key.endsWith(':acct')) delete hash.cursor;
        state[key] = hash;
      } else if (type === 'string') state[key] = await system.redis.get(key);
      else if (type === 'list') state[key] = await system.redis.lrange(key, 0, -1);
      else if (type === 'set') state[key] = (await system.redis.smembers(key)).sort();
      else if (type === 'zset') state[key] = await system.redis.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') state[key] = (await system.redis.xrange(key, '-', '+')).map(([id]) => id);
      else state[key] = type;
    }
  } while (cursor !== '0');
  return Object.fromEntries(Object.entries(state).sort(([a], [b]) => a.localeCompare(b)));
}

const prototypeState = () => ({
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
  polluted: (({}) as Record<string, unknown>).polluted ?? (({}) as Record<string, unknown>).isAdmin ?? null,
});

// ---- the run -----------------------------------------------------------------------------------------------------

test('every client event and /agent event: hostile payloads are refused, the process stays up, nothing changes', async () => {
  const before = { postgres: await postgresState(), redis: await redisState(), prototype: prototypeState() };
  assert.ok(Object.keys(before.redis).some((key) => key.includes(own.paused)), 'the snapshot sees the live session');
  const startedAt = Date.now();
  for (const [index, event] of CLIENT_EVENTS.entries()) await fuzz([client as unknown as Socket], event, SEED + index);
  for (const [index, event] of AGENT_EVENTS.entries()) await fuzz(agents.get(event)!, event, SEED + 100 + index);
  const seconds = (Date.now() - startedAt) / 1000;
  const total = (CLIENT_EVENTS.length + AGENT_EVENTS.length) * PAYLOADS_PER_EVENT;
  console.log(`  ${total} payloads in ${seconds.toFixed(1)} s (${(generationMs / 1000).toFixed(1)} s of it generating them)`);

  // both kinds of refusal were exercised, so the run reached past the schema
  const all = [...counts.values()].flatMap((byCode) => [...byCode]);
  for (const kind of ['invalid_payload', 'not_found', 'forbidden', 'claimed:false']) {
    assert.ok(all.some(([code, n]) => code === kind && n > 0), `some payloads were answered ${kind}`);
  }
  // still up, still itself
  const got = await request(client, 'session:get', { sessionId: own.paused });
  assert.ok(got.ok && got.session.status === 'paused', JSON.stringify(got));
  assert.is((await fetch(`${system.url}/healthz`)).status, 200);
  await waitFor(async () => ((await system.queue.getJobCounts('waiting')).waiting ?? 0) === 0, 10_000, 'an idle queue');
  assert.equal(prototypeState(), before.prototype, 'Object.prototype and Array.prototype untouched');
  assert.equal(await redisState(), before.redis, 'the Redis live state is unchanged');
  assert.equal(await postgresState(), before.postgres, 'Postgres is unchanged');
});

/** Bodies and Authorization headers a forger or a broken proxy could send. */
function webhookRequests(): fc.Arbitrary<{ body: string; authorization?: string; contentType?: string }> {
  const room = fc.oneof(fc.constant(() => `session-${own.voice}`), fc.uuid().map((u) => () => `session-${u}`), oddString.map((s) => () => s));
  const eventLike = fc
    .record({
      event: fc.oneof(fc.constantFrom('participant_joined', 'participant_left', 'room_finished', 'track_published'), oddString),
      room: room.map((name) => ({ name: name(), sid: 'RM_x' })),
      participant: fc.record({ identity: fc.oneof(fc.constant(() => userId), fc.uuid().map((u) => () => u)).map((f) => f()), sid: oddString }),
      id: oddString,
      createdAt: fc.oneof(fc.integer().map(String), wrongType),
    }, { requiredKeys: [] })
    .map((event) => JSON.stringify(event));
  const body = fc.oneof(eventLike, fc.json(), fc.string({ unit: 'binary', maxLength: 2000 }), hugeString, fc.constant(''));
  const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const authorization = fc.oneof(
    fc.constant(undefined),
    oddString,
    fc.constant('Bearer'),
    fc.tuple(oddString, oddString, oddString).map((parts) => parts.join('.')),
    fc.constant(`${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: TEST_LIVEKIT_KEY, sha256: 'x' })}.`),
    // really signed, over another body; or with the right secret under another key; or another secret
    fc.constant('signed-other-body'),
    fc.constant('signed-other-key'),
    fc.constant('signed-other-secret'),
  );
  return fc.record({ body, authorization, contentType: fc.oneof(fc.constant(undefined), fc.constantFrom('application/webhook+json', 'application/json', 'text/plain', 'multipart/form-data; boundary=x')) }, { requiredKeys: ['body'] });
}

test('the LiveKit webhook route: garbage bodies and forged signatures are refused, never a 2xx or 5xx, nothing changes', async () => {
  const before = { postgres: await postgresState(), redis: await redisState() };
  const samples = fc.sample(webhookRequests(), { seed: SEED + 200, numRuns: WEBHOOK_BODIES });
  const spec = { event: 'participant_joined' as const, room: `session-${own.voice}`, identity: userId, joinedAtMs: Date.now() };
  const signatures = {
    'signed-other-body': (await signedWebhook(spec)).authorization,
    'signed-other-key': (await signedWebhook(spec, TEST_LIVEKIT_SECRET, 'another-key')).authorization,
    'signed-other-secret': (await signedWebhook(spec, 'another-secret-0123456789abcdef')).authorization,
  } as Record<string, string>;
  const statuses = new Map<number, number>();
  const wrong: string[] = [];
  for (let start = 0; start < samples.length; start += 50) {
    await Promise.all(
      samples.slice(start, start + 50).map(async ({ body, authorization, contentType }) => {
        const headers: Record<string, string> = {};
        if (contentType) headers['content-type'] = contentType;
        if (authorization !== undefined) headers.authorization = signatures[authorization] ?? authorization.replace(/[^\t\x20-\x7e]/g, '?');
        const response = await fetch(`${system.url}/livekit/webhook`, { method: 'POST', headers, body });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status < 400 || response.status >= 500) wrong.push(`${response.status} for ${JSON.stringify({ body: body.slice(0, 200), authorization: headers.authorization?.slice(0, 80) })}`);
      }),
    );
  }
  console.log(`  webhook: ${WEBHOOK_BODIES} requests: ${[...statuses].map(([status, n]) => `${n} × ${status}`).join(', ')}`);
  assert.equal(wrong.slice(0, 5), []);
  assert.ok((statuses.get(401) ?? 0) > WEBHOOK_BODIES / 2, 'most are refused as unsigned');
  assert.equal(await redisState(), before.redis, 'the Redis live state is unchanged');
  assert.equal(await postgresState(), before.postgres, 'Postgres is unchanged');
});

test.run();

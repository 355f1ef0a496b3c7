/**
 * Hostile HTTP requests, generated with fast-check from a printed seed (replay with FUZZ_SEED=<seed>), to every route
 * of both processes: the billing API (sessions list with its cursor and filters, a session, the CSV export, the
 * reconciliation, analytics, adjustments, a clone's documents) and the gateway's (public clones, the LiveKit webhook,
 * health). Query values, path ids, bodies and headers are malformed in every way a client can send — impossible dates
 * (month 99, year 0000, 29 February of a common year), crafted keyset cursors, ids that are not uuids, NUL and control
 * characters, lone surrogates, huge and wrongly typed values — first without a token, then as an admin or the clone's
 * creator. Each answer must be below 500, and every refusal must carry the project's error body
 * `{ error: { code, message } }`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { seedFrom } from '../../scripts/lib/seeded-random.ts';
import { billingAppOf, createClone, createUser, startSystem, type TestSystem } from '../support/system.ts';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts';

const REQUESTS_PER_ROUTE = Number(process.env.FUZZ_HTTP_REQUESTS ?? 300);
const SEED = seedFrom('FUZZ_SEED');

let system: TestSystem;
let billing: FastifyInstance;
let adminToken: string;
let creatorToken: string;
let cloneId: string;
let stripe: FakeStripe;
const statuses = new Map<string, Map<number, number>>();

test.before(async () => {
  console.log(`  http fuzz seed: ${SEED} (replay: FUZZ_SEED=${SEED}), ${REQUESTS_PER_ROUTE} requests per route and identity`);
  stripe = await startFakeStripe();
  // purchases configured, against a local Stripe: a valid request is served, never left to a network timeout
  system = await startSystem({ env: { STRIPE_SECRET_KEY: 'sk_test_fuzz', STRIPE_WEBHOOK_SECRET: 'whsec_fuzz', STRIPE_API_URL: stripe.url } });
  billing = billingAppOf(system, { documents: { uploadDir: `/tmp/tollgate-http-fuzz-${process.pid}`, maxUploadBytes: 64 * 1024 } });
  const admin = await createUser(system, '0.0000');
  await system.database.db.updateTable('user_profiles').set({ role: 'admin' }).where('id', '=', admin).execute();
  adminToken = await system.token(admin);
  const clone = await createClone(system);
  cloneId = clone.cloneId;
  creatorToken = await system.token(clone.creatorId);
});

test.after(async () => {
  for (const [route, byStatus] of statuses) console.log(`  ${route}: ${[...byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${n} × ${s}`).join(', ')}`);
  await billing?.close();
  await system?.close();
  await stripe?.close();
});

// ---- generators --------------------------------------------------------------------------------------------------

const pad = (n: number, width: number) => String(n).padStart(width, '0');
/** 'YYYY-MM-DD' with any digits in each field: real dates, month 99, day 00, year 0000, 29 February 2021. */
const looseDate = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 })).map(([y, m, d]) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`),
  fc.constantFrom('0000-01-01', '2021-02-29', '2024-02-29', '2020-99-99', '9999-12-31', '0001-01-01', '1970-01-01', '275760-09-13'),
);
const looseTime = fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 })).map(([h, m, s]) => `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}`);
const looseInstant = fc.oneof(
  looseDate,
  fc.tuple(looseDate, looseTime, fc.constantFrom('Z', '.000Z', '.000000Z', '+00:00', '-23:59', '+99:99', '')).map(([d, t, z]) => `${d}T${t}${z}`),
);
const controlled = fc.oneof(
  fc.constantFrom('\u0000', 'a\u0000b', '\u0001\u0002\u001f', '\u007f', '\r\n', '\ud800', 'x\udc00y', '\u202e', '%00', '%'),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const oddText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  controlled,
  fc.nat({ max: 5000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', 'null', 'undefined', 'NaN', '-1', '1e309', "' OR 1=1 --", '../../etc/passwd', '[]', '{}'),
);
const nearUuid = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => u.replaceAll('-', '')),
  fc.uuid().map((u) => `${u}\u0000`),
  fc.uuid().map((u) => u.slice(0, -1)),
  oddText,
);
/** Keyset cursors as the list hands them out — base64url of [end_time, id] — with impossible instants and ids. */
const cursor = fc.oneof(
  fc.tuple(fc.tuple(looseDate, looseTime).map(([d, t]) => `${d}T${t}.000000Z`), nearUuid).map((pair) => Buffer.from(JSON.stringify(pair)).toString('base64url')),
  fc.anything({ maxDepth: 2 }).map((value) => Buffer.from(JSON.stringify(value) ?? 'undefined').toString('base64url')),
  oddText,
);
const queryValue = fc.oneof({ weight: 3, arbitrary: looseInstant }, { weight: 2, arbitrary: nearUuid }, { weight: 3, arbitrary: oddText }, { weight: 1, arbitrary: cursor });

/** URL-encoded as a client would (a lone surrogate goes out as U+FFFD; `rawEncoded` sends the bytes it cannot). */
const encode = (text: string) => encodeURIComponent(text.toWellFormed());
/** Percent-encodings no text encodes to: NUL, a surrogate and an overlong NUL in UTF-8, stray bytes, broken escapes. */
const rawEncoded = fc.constantFrom('%00', 'a%00b', '%ED%A0%80', '%FF', '%C0%80', '%E2%82', '%', '%zz', '%%', '%u0000');

/** A query string over the route's keys (and some others), each value malformed or not, URL-encoded. */
function queryString(keys: string[], specific: Record<string, fc.Arbitrary<string>> = {}): fc.Arbitrary<string> {
  const value = (key: string) => fc.oneof({ weight: 6, arbitrary: (specific[key] ?? queryValue).map(encode) }, { weight: 1, arbitrary: rawEncoded });
  const entry = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...keys).chain((key) => fc.tuple(fc.constant(key), value(key))) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }).map(encode), value('')) },
  );
  return fc.array(entry, { maxLength: 5 }).map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
}

const jsonBody = fc.oneof(
  fc.record(
    {
      idempotencyKey: fc.oneof(oddText, fc.uuid()),
      sessionId: nearUuid,
      amount: fc.oneof(fc.constantFrom('1.0000', '-0.5000', '0', '0.00001', '99999999999', '1e3', '-', '١'), oddText, fc.integer().map(String)),
      reason: oddText,
    },
    { requiredKeys: [] },
  ),
  fc.anything({ maxDepth: 3, maxKeys: 5 }),
);
const rawBody = fc.oneof(
  jsonBody.map((body) => JSON.stringify(body) ?? ''),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('{', '{"a":', '[1,2', '\u0000', '{"__proto__":{"x":1}}', ''),
);
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json; charset=latin1', '');

/** A multipart body: well-formed parts with hostile names, file names and titles, or a broken one. */
const multipartBody = fc
  .tuple(
    fc.constantFrom('file', 'files', 'upload', 'title', ''),
    fc.oneof(oddText, fc.constantFrom('.', '..', '', 'a.txt', 'a\u0000.txt', 'notes.md', 'x.pdf')),
    fc.oneof(fc.constant(undefined), oddText),
    fc.constantFrom('text/plain', 'application/pdf', 'text/html', 'application/x-evil'),
    fc.string({ maxLength: 200 }),
  )
  .map(([field, filename, title, type, content]) => {
    const boundary = 'fuzzboundary';
    let body = '';
    if (title !== undefined) body += `--${boundary}\r\ncontent-disposition: form-data; name="title"\r\n\r\n${title}\r\n`;
    body += `--${boundary}\r\ncontent-disposition: form-data; name="${field}"; filename="${filename}"\r\ncontent-type: ${type}\r\n\r\n${content}\r\n--${boundary}--\r\n`;
    return { body, contentType: `multipart/form-data; boundary=${boundary}` };
  });

/** Who asks: nobody, garbage, an expired or foreign token, or the right person. */
function authorization(right: () => string): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic abc', 'Bearer a.b.c', 'bearer \u0000', 'Bearer eyJhbGciOiJub25lIn0.e30.') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => `Bearer ${s}`) },
    { weight: 8, arbitrary: fc.constant(null).map(() => `Bearer ${right()}`) },
  );
}

interface FuzzRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

function withAuth(request: FuzzRequest, auth: string | undefined): FuzzRequest {
  return auth === undefined ? request : { ...request, headers: { ...request.headers, authorization: auth } };
}

const pathId = fc.oneof({ weight: 6, arbitrary: fc.oneof(nearUuid, controlled).map(encode) }, { weight: 1, arbitrary: rawEncoded });

const BILLING_ROUTES: Record<string, fc.Arbitrary<FuzzRequest>> = {
  'GET /api/ledger/sessions': fc
    .tuple(queryString(['from', 'to', 'userId', 'cloneId', 'creatorId', 'type', 'endReason', 'cursor', 'limit'], { cursor, limit: fc.oneof(oddText, fc.integer().map(String)) }), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/ledger/sessions?${query}`, headers: {} }, auth)),
  'GET /api/ledger/sessions/:id': fc
    .tuple(pathId, authorization(() => adminToken))
    .map(([id, auth]) => withAuth({ method: 'GET', url: `/api/ledger/sessions/${id}`, headers: {} }, auth)),
  'GET /api/ledger/reconciliation': fc
    .tuple(queryString(['from', 'to']), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/ledger/reconciliation?${query}`, headers: {} }, auth)),
  'GET /api/ledger/export.csv': fc
    .tuple(queryString(['from', 'to']), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/ledger/export.csv?${query}`, headers: {} }, auth)),
  'GET /api/analytics/creators': fc
    .tuple(queryString(['from', 'to', 'creatorId', 'cloneId'], { from: looseDate, to: looseDate }), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/analytics/creators?${query}`, headers: {} }, auth)),
  'GET /api/analytics/users': fc
    .tuple(queryString(['from', 'to', 'userId'], { from: looseDate, to: looseDate }), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/analytics/users?${query}`, headers: {} }, auth)),
  'POST /api/ledger/adjustments': fc
    .tuple(rawBody, contentType, authorization(() => adminToken))
    .map(([payload, type, auth]) => withAuth({ method: 'POST', url: '/api/ledger/adjustments', headers: type ? { 'content-type': type } : {}, payload }, auth)),
  // random ids: nobody real is forgotten (a fuzzed id that parses is an unknown person, 404)
  'POST /api/users/:id/forget': fc
    .tuple(pathId, rawBody, authorization(() => adminToken))
    .map(([id, payload, auth]) => withAuth({ method: 'POST', url: `/api/users/${id}/forget`, headers: {}, payload }, auth)),
  'POST /api/credits/checkout': fc
    .tuple(rawBody, contentType, authorization(() => creatorToken))
    .map(([payload, type, auth]) => withAuth({ method: 'POST', url: '/api/credits/checkout', headers: type ? { 'content-type': type } : {}, payload }, auth)),
  'POST /stripe/webhook': fc
    .tuple(
      rawBody,
      contentType,
      fc.oneof(
        fc.constant(undefined),
        fc.string({ maxLength: 80 }),
        fc.tuple(fc.integer({ min: 0, max: 2_000_000_000 }), fc.stringMatching(/^[0-9a-f]{0,64}$/)).map(([t, v]) => `t=${t},v1=${v}`),
      ),
    )
    .map(([payload, type, signature]) => ({
      method: 'POST' as const,
      url: '/stripe/webhook',
      headers: { ...(type ? { 'content-type': type } : {}), ...(signature === undefined ? {} : { 'stripe-signature': signature }) },
      payload,
    })),
  'GET /api/ledger/movements': fc
    .tuple(queryString(['from', 'to', 'userId', 'kind']), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/ledger/movements?${query}`, headers: {} }, auth)),
  'GET /api/payouts/balances': fc
    .tuple(queryString(['creatorId']), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/payouts/balances?${query}`, headers: {} }, auth)),
  'GET /api/payouts': fc
    .tuple(queryString(['period']), authorization(() => adminToken))
    .map(([query, auth]) => withAuth({ method: 'GET', url: `/api/payouts?${query}`, headers: {} }, auth)),
  // a fuzzed period that parses runs a real (empty: no creator has a payout account) payout run
  'POST /api/payouts/run': fc
    .tuple(rawBody, contentType, authorization(() => adminToken))
    .map(([payload, type, auth]) => withAuth({ method: 'POST', url: '/api/payouts/run', headers: type ? { 'content-type': type } : {}, payload }, auth)),
  'PUT /api/creators/:id/payout-account': fc
    .tuple(pathId, rawBody, contentType, authorization(() => adminToken))
    .map(([id, payload, type, auth]) => withAuth({ method: 'PUT', url: `/api/creators/${id}/payout-account`, headers: type ? { 'content-type': type } : {}, payload }, auth)),
  'POST /api/subscriptions/checkout': fc
    .tuple(rawBody, contentType, authorization(() => creatorToken))
    .map(([payload, type, auth]) => withAuth({ method: 'POST', url: '/api/subscriptions/checkout', headers: type ? { 'content-type': type } : {}, payload }, auth)),
  'GET /api/clones/:id/documents': fc
    .tuple(fc.oneof(pathId, fc.constant(null).map(() => cloneId)), authorization(() => creatorToken))
    .map(([id, auth]) => withAuth({ method: 'GET', url: `/api/clones/${id}/documents`, headers: {} }, auth)),
  'POST /api/clones/:id/documents': fc
    .tuple(fc.oneof(pathId, fc.constant(null).map(() => cloneId), fc.constant(null).map(() => cloneId)), multipartBody, authorization(() => creatorToken))
    .map(([id, multipart, auth]) => withAuth({ method: 'POST', url: `/api/clones/${id}/documents`, headers: { 'content-type': multipart.contentType }, payload: multipart.body }, auth)),
};

const GATEWAY_ROUTES: Record<string, fc.Arbitrary<FuzzRequest>> = {
  'GET /api/clones': queryString(['id']).map((query) => ({ method: 'GET', url: `/api/clones?${query}`, headers: {} })),
  'POST /livekit/webhook': fc
    .tuple(rawBody, fc.constantFrom('application/webhook+json', 'application/json', 'text/plain', ''), authorization(() => 'a.b.c'))
    .map(([payload, type, auth]) => withAuth({ method: 'POST', url: '/livekit/webhook', headers: type ? { 'content-type': type } : {}, payload }, auth)),
  'GET /healthz': queryString(['x']).map((query) => ({ method: 'GET', url: `/healthz?${query}`, headers: {} })),
};

async function fuzzRoute(app: FastifyInstance, route: string, requests: fc.Arbitrary<FuzzRequest>): Promise<void> {
  const byStatus = new Map<number, number>();
  statuses.set(route, byStatus);
  const samples = fc.sample(requests, { numRuns: REQUESTS_PER_ROUTE, seed: SEED });
  for (const request of samples) {
    const response = await app.inject(request);
    byStatus.set(response.statusCode, (byStatus.get(response.statusCode) ?? 0) + 1);
    const replay = `(seed ${SEED}) ${request.method} ${JSON.stringify(request.url)} ${JSON.stringify(request.payload ?? '').slice(0, 300)}`;
    assert.ok(response.statusCode < 500, `${route} answered ${response.statusCode} ${response.body.slice(0, 300)} to ${replay}`);
    if (response.statusCode >= 400) {
      const body = response.json() as { error?: { code?: unknown; message?: unknown } };
      assert.type(body.error?.code, 'string', `${route}: the error body of ${response.statusCode} to ${replay}`);
      assert.type(body.error?.message, 'string', `${route}: the error body of ${response.statusCode} to ${replay}`);
    }
  }
}

for (const [route, requests] of Object.entries(BILLING_ROUTES)) {
  test(`billing ${route}: every hostile request is refused with a 4xx and the error body, never a 5xx`, async () => {
    await fuzzRoute(billing, route, requests);
  });
}
for (const [route, requests] of Object.entries(GATEWAY_ROUTES)) {
  test(`gateway ${route}: every hostile request is refused with a 4xx and the error body, never a 5xx`, async () => {
    await fuzzRoute(system.gateway.app, route, requests);
  });
}

test('the findings of the probe, one by one: each a 400 with the error body', async () => {
  const asAdmin = { authorization: `Bearer ${adminToken}` };
  const cursorOf = (pair: unknown) => Buffer.from(JSON.stringify(pair)).toString('base64url');
  const uuid = '00000000-0000-4000-8000-000000000000';
  for (const url of [
    `/api/ledger/sessions?cursor=${cursorOf(['2020-99-99T99:99:99.000000Z', uuid])}`,
    `/api/ledger/sessions?cursor=${cursorOf(['0000-01-01T00:00:00.000000Z', uuid])}`,
    `/api/ledger/sessions?cursor=${cursorOf(['2021-02-29T00:00:00.000000Z', uuid])}`,
    '/api/analytics/creators?to=0000-01-01',
    '/api/analytics/users?from=0000-01-01',
    '/api/ledger/reconciliation?from=0000-01-01',
    '/api/ledger/sessions?endReason=a%00b',
  ]) {
    const response = await billing.inject({ url, headers: asAdmin });
    assert.is(response.statusCode, 400, `${url}: ${response.body}`);
    assert.is(response.json().error.code, 'invalid_payload', url);
  }
  for (const payload of [
    { idempotencyKey: 'k\u0000', sessionId: uuid, amount: '1.0000', reason: 'refund' },
    { idempotencyKey: 'k', sessionId: uuid, amount: '1.0000', reason: 'refund \u0000' },
    { idempotencyKey: 'k', sessionId: uuid, amount: '1.0000', reason: 'refund \ud800' },
  ]) {
    const response = await billing.inject({ method: 'POST', url: '/api/ledger/adjustments', headers: asAdmin, payload });
    assert.is(response.statusCode, 400, `${JSON.stringify(payload)}: ${response.body}`);
    assert.is(response.json().error.code, 'invalid_payload');
  }
});

test.run();

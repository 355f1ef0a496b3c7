/**
 * Every error answer of both HTTP servers — the gateway's (Socket.IO's port) and the billing app's — is the project's
 * `{ error: { code, message } }`, whoever produces it: fastify's router (a malformed URL, a parameter or a URL too
 * long), its body parsing (too large, a content type it cannot parse), node's HTTP parser before fastify sees the
 * request (headers too large, bytes that are not HTTP), and no such route. Sent as raw bytes: fetch would refuse most
 * of these requests itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { toHttpError } from '#billing/http/http-error.ts';
import { exchange, type RawResponse } from '../support/raw-http.ts';
import { billingAppOf, startSystem, type TestSystem } from '../support/system.ts';

let system: TestSystem;
let billing: FastifyInstance;
let uploadDir: string;
let urls: Record<'gateway' | 'billing', string>;

test.before(async () => {
  system = await startSystem();
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-http-errors-'));
  billing = billingAppOf(system, { documents: { uploadDir, maxUploadBytes: 10_000 } });
  await billing.listen({ port: 0, host: '127.0.0.1' });
  urls = { gateway: system.url, billing: `http://127.0.0.1:${(billing.server.address() as AddressInfo).port}` };
});
test.after(async () => {
  await billing?.close();
  await system?.close();
  rmSync(uploadDir, { recursive: true, force: true });
});

/** A request of `lines` (request line and headers), with an optional body, closing the connection after. */
const request = (lines: string[], body = '') => `${[...lines, 'Host: 127.0.0.1', 'Connection: close'].join('\r\n')}\r\n\r\n${body}`;

/** The answer is `status` with exactly `{ error: { code, message } }` as JSON. */
function assertErrorShape(response: RawResponse | undefined, status: number, code: string, what: string): void {
  assert.ok(response, `${what}: no response`);
  assert.is(response.status, status, `${what}: ${response.status} ${response.body}`);
  assert.match(response.headers['content-type'] ?? '', /^application\/json/, `${what}: content-type`);
  const body = JSON.parse(response.body) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(Object.keys(body), ['error'], `${what}: ${response.body}`);
  assert.equal(Object.keys(body.error ?? {}).sort(), ['code', 'message'], `${what}: ${response.body}`);
  assert.is(body.error?.code, code, what);
  assert.type(body.error?.message, 'string');
}

const big = (n: number) => 'x'.repeat(n);

for (const side of ['gateway', 'billing'] as const) {
  test(`${side}: a malformed URL, a URL too long, headers too large, not HTTP, no such route — each in the project's error shape`, async () => {
    const url = urls[side];
    const cases: Array<[string, string | Buffer, number, string]> = [
      ['malformed percent-encoding', request(['GET /%zz HTTP/1.1']), 400, 'invalid_payload'],
      ['malformed URI in a route', request(['GET /api/clones/%E0%A4%A/documents HTTP/1.1']), 400, 'invalid_payload'],
      ['URL over 4096 characters', request([`GET /${big(5000)} HTTP/1.1`]), 414, 'invalid_payload'],
      ['headers over 16 KiB', request(['GET / HTTP/1.1', `X-Filler: ${big(20_000)}`]), 431, 'invalid_payload'],
      ['request line over 16 KiB', request([`GET /${big(20_000)} HTTP/1.1`]), 431, 'invalid_payload'],
      ['not an HTTP method', request(['BREW / HTTP/1.1']), 400, 'invalid_payload'],
      ['garbage', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]), 400, 'invalid_payload'],
      ['no such route', request(['GET /no/such/route HTTP/1.1']), 404, 'not_found'],
    ];
    for (const [what, bytes, status, code] of cases) {
      const { response } = await exchange(url, bytes);
      assertErrorShape(response, status, code, `${side}, ${what}`);
    }
  });
}

test('billing: a route parameter over fastify\'s maxParamLength is 414; a body over the limit 413; a content type no parser takes 415', async () => {
  const url = urls.billing;
  const documents = `/api/clones/${randomUUID()}/documents`;
  const cases: Array<[string, string, number]> = [
    ['parameter too long', request([`GET /api/clones/${big(200)}/documents HTTP/1.1`]), 414],
    ['body over 16 KiB', request([`POST ${documents} HTTP/1.1`, 'Content-Type: application/json', 'Content-Length: 20000'], big(20_000)), 413],
    ['unknown content type', request([`POST ${documents} HTTP/1.1`, 'Content-Type: text/x-weird', 'Content-Length: 3'], 'abc'), 415],
    ['unparseable content type', request([`POST ${documents} HTTP/1.1`, 'Content-Type: ;;;', 'Content-Length: 3'], 'abc'), 415],
  ];
  for (const [what, bytes, status] of cases) {
    const { response } = await exchange(url, bytes);
    assertErrorShape(response, status, 'invalid_payload', `billing, ${what}`);
  }
});

test('gateway: the LiveKit webhook route answers a body over its limit 413 and an unparseable content type 415 in the error shape', async () => {
  const url = urls.gateway;
  const cases: Array<[string, string, number]> = [
    ['body over 256 KiB', request(['POST /livekit/webhook HTTP/1.1', 'Content-Type: application/webhook+json', 'Content-Length: 300000'], big(300_000)), 413],
    ['unparseable content type', request(['POST /livekit/webhook HTTP/1.1', 'Content-Type: ;;;', 'Content-Length: 3'], 'abc'), 415],
    ['a missing web asset', request(['GET /web/no-such-file.css HTTP/1.1']), 404],
  ];
  for (const [what, bytes, status] of cases) {
    const { response } = await exchange(url, bytes);
    assertErrorShape(response, status, status === 404 ? 'not_found' : 'invalid_payload', `gateway, ${what}`);
  }
});

test('a ZodError reaching the billing error mapping is 400 invalid_payload, not 500', () => {
  const parsed = z.object({ cloneId: z.string().uuid() }).safeParse({ cloneId: 'abc' });
  assert.ok(!parsed.success);
  const answer = toHttpError(parsed.error);
  assert.is(answer.status, 400);
  assert.is(answer.body.error.code, 'invalid_payload');
  assert.match(answer.body.error.message, /cloneId/);
  assert.is(toHttpError(new Error('boom')).status, 500, 'other errors stay internal');
});

test.run();

/**
 * Request deadlines on both HTTP servers, with small limits so each runs in seconds: a body trickling in below
 * HTTP_MIN_UPLOAD_BYTES_PER_SEC (after HTTP_UPLOAD_GRACE_MS) is cut with 408 — a document upload stores nothing —
 * and a request not received whole within HTTP_REQUEST_TIMEOUT_MS (headers or body, even at a good rate) is cut
 * with 408; each in the project's error shape, the connection closed. Upgraded websockets and long-polling Socket.IO
 * clients connected meanwhile outlive the timeout and keep working, and an upload at a fair pace is accepted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { io } from 'socket.io-client';
import { exchange, trickle, type Exchange } from '../support/raw-http.ts';
import { billingAppOf, createClone, createUser, request, startSystem, waitFor, type TestClient, type TestSystem } from '../support/system.ts';

const REQUEST_TIMEOUT_MS = 2000;
const MIN_BYTES_PER_SEC = 2000;
const GRACE_MS = 500;
/** How long a test waits for a cut that must come (generous: the cuts are due within about REQUEST_TIMEOUT_MS). */
const WAIT_MS = 10_000;

let system: TestSystem;
let billing: FastifyInstance;
let billingUrl: string;
let uploadDir: string;
test.before(async () => {
  system = await startSystem({
    env: {
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HTTP_MIN_UPLOAD_BYTES_PER_SEC: String(MIN_BYTES_PER_SEC),
      HTTP_UPLOAD_GRACE_MS: String(GRACE_MS),
    },
  });
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-deadlines-'));
  billing = billingAppOf(system, { documents: { uploadDir, maxUploadBytes: 1_000_000 } });
  await billing.listen({ port: 0, host: '127.0.0.1' });
  billingUrl = `http://127.0.0.1:${(billing.server.address() as AddressInfo).port}`;
});
test.after(async () => {
  await billing?.close();
  await system?.close();
  rmSync(uploadDir, { recursive: true, force: true });
});

const BOUNDARY = 'tollgate-deadline-boundary';

/** A document upload's request head and the start of its file part, announcing `contentLength` bytes of body. */
async function uploadHead(cloneId: string, creatorId: string, contentLength: number): Promise<string> {
  return (
    `POST /api/clones/${cloneId}/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer ${await system.token(creatorId)}\r\n` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${contentLength}\r\n\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\nContent-Type: text/plain\r\n\r\n`
  );
}

const webhookHead = (contentLength: number) =>
  `POST /livekit/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/webhook+json\r\nContent-Length: ${contentLength}\r\n\r\n`;

async function creatorsClone(): Promise<{ creatorId: string; cloneId: string }> {
  const { cloneId, creatorId } = await createClone(system, '1.0000');
  return { cloneId, creatorId };
}

/** Cut with 408 in the error shape, the connection closed by the server, the message matching `why`. */
function assertCut(result: Exchange, why: RegExp, what: string): void {
  assert.ok(result.response, `${what}: no answer within ${WAIT_MS} ms`);
  assert.is(result.response.status, 408, `${what}: ${result.response.status} ${result.response.body}`);
  const body = JSON.parse(result.response.body) as { error: { code: string; message: string } };
  assert.equal(Object.keys(body), ['error']);
  assert.is(body.error.code, 'invalid_payload', what);
  assert.match(body.error.message, why, what);
  assert.ok(result.closedByServer, `${what}: the connection was left open`);
}

const tooSlow = /slower than 2000 bytes\/s/;
const notInTime = /not received in time/;

test('a document upload trickling in below HTTP_MIN_UPLOAD_BYTES_PER_SEC is cut with 408 and stores nothing', async () => {
  const { cloneId, creatorId } = await creatorsClone();
  // 20 bytes every 100 ms: 200 bytes/s, a tenth of the floor
  const result = await exchange(billingUrl, trickle(await uploadHead(cloneId, creatorId, 100_000), 'x'.repeat(20), 100), WAIT_MS);
  assertCut(result, tooSlow, 'billing upload');
  const rows = await system.database.db.selectFrom('documents').select('id').where('clone_id', '=', cloneId).execute();
  assert.is(rows.length, 0, 'nothing stored');
  const dir = path.join(uploadDir, cloneId);
  assert.equal(existsSync(dir) ? readdirSync(dir) : [], [], 'no file written');
});

test('a LiveKit webhook body trickling in below the floor is cut with 408 on the gateway', async () => {
  const result = await exchange(system.url, trickle(webhookHead(100_000), '{'.repeat(20), 100), WAIT_MS);
  assertCut(result, tooSlow, 'gateway webhook');
});

test('a request not received whole within HTTP_REQUEST_TIMEOUT_MS is cut with 408 on both processes; websocket and long-polling clients outlive it and keep working', async () => {
  const userId = await createUser(system);
  const websocket = await system.connect(userId);
  const polling: TestClient = io(system.url, { auth: { token: await system.token(userId) }, transports: ['polling'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    polling.once('connect', () => resolve());
    polling.once('connect_error', reject);
  });
  const connectedAt = Date.now();
  const { cloneId, creatorId } = await creatorsClone();
  // 100 bytes every 25 ms: 4000 bytes/s, above the floor, but 200 000 bytes would take 50 s
  const [upload, webhook, gatewayHeaders, billingHeaders] = await Promise.all([
    exchange(billingUrl, trickle(await uploadHead(cloneId, creatorId, 200_000), 'x'.repeat(100), 25), WAIT_MS),
    exchange(system.url, trickle(webhookHead(200_000), ' '.repeat(100), 25), WAIT_MS),
    // headers that never end
    exchange(system.url, trickle('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-More: 1\r\n', 100), WAIT_MS),
    exchange(billingUrl, trickle('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-More: 1\r\n', 100), WAIT_MS),
  ]);
  assertCut(upload, notInTime, 'billing upload');
  assertCut(webhook, notInTime, 'gateway webhook');
  assertCut(gatewayHeaders, notInTime, 'gateway headers');
  assertCut(billingHeaders, notInTime, 'billing headers');
  const rows = await system.database.db.selectFrom('documents').select('id').where('clone_id', '=', cloneId).execute();
  assert.is(rows.length, 0, 'nothing stored');

  await waitFor(() => Date.now() - connectedAt > REQUEST_TIMEOUT_MS * 1.5, WAIT_MS, 'the clients to outlive the request timeout');
  for (const [what, client] of [['websocket', websocket], ['polling', polling]] as const) {
    assert.ok(client.connected, `${what} still connected`);
    const answer = await request(client, 'session:get', { sessionId: randomUUID() });
    assert.ok(!answer.ok && answer.error.code === 'not_found', `${what}: ${JSON.stringify(answer)}`);
  }
  assert.is(websocket.io.engine.transport.name, 'websocket');
  assert.is(polling.io.engine.transport.name, 'polling');
  websocket.disconnect();
  polling.disconnect();
});

test('an upload at a fair pace (above the floor, within the timeout) is accepted', async () => {
  const { cloneId, creatorId } = await creatorsClone();
  const content = 'y'.repeat(3000);
  const tail = `\r\n--${BOUNDARY}--\r\n`;
  const head = await uploadHead(cloneId, creatorId, 0);
  const preamble = head.slice(head.indexOf('\r\n\r\n') + 4);
  const length = Buffer.byteLength(preamble) + content.length + tail.length;
  const result = await exchange(
    billingUrl,
    async (socket, closed) => {
      socket.write(head.replace('Content-Length: 0', `Content-Length: ${length}`));
      // 150 bytes every 50 ms: 3000 bytes/s for about a second
      for (let sent = 0; sent < content.length && !closed(); sent += 150) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        socket.write(content.slice(sent, sent + 150));
      }
      socket.write(tail);
    },
    WAIT_MS,
  );
  assert.ok(result.response, 'no answer');
  assert.is(result.response.status, 202, result.response.body);
  const rows = await system.database.db.selectFrom('documents').select('file_size_bytes').where('clone_id', '=', cloneId).execute();
  assert.equal(rows.map((row) => Number(row.file_size_bytes)), [3000]);
});

test.run();

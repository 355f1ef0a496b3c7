import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createUser, startLedgerApp, type LedgerHarness } from '../ledger/ledger-harness.ts';

// The creators' upload endpoint, on the billing app, with a real multipart body and real Postgres.
let harness: LedgerHarness;
let uploadDir: string;
const queued: string[] = [];
test.before(async () => {
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-upload-'));
  harness = await startLedgerApp({ documents: { uploadDir, maxUploadBytes: 1000, enqueue: async (id) => void queued.push(id) } });
});
test.after(async () => {
  await harness?.close();
  rmSync(uploadDir, { recursive: true, force: true });
});

function multipart(fileName: string, type: string, content: string | Buffer, title?: string) {
  const boundary = `----tollgate${randomUUID()}`;
  const parts: Buffer[] = [];
  if (title) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n${title}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: ${type}\r\n\r\n`));
  parts.push(Buffer.isBuffer(content) ? content : Buffer.from(content), Buffer.from(`\r\n--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

async function cloneOf(creatorId: string): Promise<string> {
  const id = randomUUID();
  await harness.database.db.insertInto('clones').values({ id, creator_id: creatorId, name: 'Uploader', base_price: '1.0000', personality_traits: '{}' }).execute();
  return id;
}

test('the clone\'s creator uploads a document: stored, pending, queued, listed', async () => {
  const creator = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const body = multipart('notes.md', 'text/markdown', '# Notes\n\nThe Bernoulli numbers.', 'My notes');
  const response = await harness.request({ method: 'POST', url: `/api/clones/${cloneId}/documents`, token: await harness.token(creator), ...body });
  assert.is(response.statusCode, 202, response.body);
  const { document } = response.json();
  assert.is(document.processingStatus, 'pending');
  assert.equal(queued, [document.id]);
  const row = await harness.database.db.selectFrom('documents').selectAll().where('id', '=', document.id).executeTakeFirstOrThrow();
  assert.is(row.title, 'My notes');
  assert.is(row.processing_status, 'pending');
  const file = path.resolve(uploadDir, row.file_path);
  assert.ok(file.startsWith(uploadDir) && existsSync(file));
  assert.is(readFileSync(file, 'utf8'), '# Notes\n\nThe Bernoulli numbers.');
  await harness.database.db.updateTable('documents').set({ processing_status: 'failed', failure_reason: 'unreadable' }).where('id', '=', document.id).execute();
  const listed = await harness.request({ method: 'GET', url: `/api/clones/${cloneId}/documents`, token: await harness.token(creator) });
  assert.is(listed.statusCode, 200);
  assert.equal(listed.json().documents.map((d: { id: string; processingStatus: string; failureReason: string }) => [d.id, d.processingStatus, d.failureReason]), [[document.id, 'failed', 'unreadable']]);
});

test('only the clone\'s creator, only supported files, only up to MAX_UPLOAD_BYTES', async () => {
  const creator = await createUser(harness.database, 'creator');
  const other = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const url = `/api/clones/${cloneId}/documents`;
  const ok = multipart('a.txt', 'text/plain', 'hello');
  assert.is((await harness.request({ method: 'POST', url, token: null, ...ok })).statusCode, 401);
  assert.is((await harness.request({ method: 'POST', url, token: await harness.token(other), ...ok })).statusCode, 403);
  const unsupported = await harness.request({ method: 'POST', url, token: await harness.token(creator), ...multipart('a.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'x') });
  assert.is(unsupported.statusCode, 400);
  assert.is(unsupported.json().error.code, 'invalid_payload');
  const big = await harness.request({ method: 'POST', url, token: await harness.token(creator), ...multipart('big.txt', 'text/plain', 'x'.repeat(1001)) });
  assert.is(big.statusCode, 413, big.body);
  assert.ok(big.json().error.message.length > 0);
  const rows = await harness.database.db.selectFrom('documents').select('id').where('clone_id', '=', cloneId).execute();
  assert.is(rows.length, 0, 'nothing stored for refused uploads');
  assert.is((await harness.request({ method: 'GET', url: `/api/clones/${randomUUID()}/documents`, token: await harness.token(creator) })).statusCode, 404);
});

test('a malformed multipart body is a 400 invalid_payload, not a 500, and stores nothing', async () => {
  const creator = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const url = `/api/clones/${cloneId}/documents`;
  const token = await harness.token(creator);
  const good = multipart('a.txt', 'text/plain', 'hello');
  const bodies = [
    // the header names another boundary than the body uses
    { payload: good.payload, headers: { 'content-type': 'multipart/form-data; boundary=not-the-one' } },
    // no boundary at all
    { payload: good.payload, headers: { 'content-type': 'multipart/form-data' } },
    // cut off in the middle of the file part
    { payload: good.payload.subarray(0, good.payload.length - 20), headers: good.headers },
  ];
  for (const body of bodies) {
    const response = await harness.request({ method: 'POST', url, token, ...body });
    assert.is(response.statusCode, 400, `${body.headers['content-type']}: ${response.body}`);
    assert.is(response.json().error.code, 'invalid_payload');
  }
  const rows = await harness.database.db.selectFrom('documents').select('id').where('clone_id', '=', cloneId).execute();
  assert.is(rows.length, 0);
});

test.run();

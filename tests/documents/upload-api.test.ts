import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

/** One multipart part as sent: a field (no `filename`) or a file (`filename` as it appears in the header, unescaped). */
interface RawPart {
  name: string;
  filename?: string;
  /** A header `filename*=` value instead of `filename=` (RFC 5987, e.g. utf-8''a%00b.txt). */
  filenameStar?: string;
  type?: string;
  content: string;
}

function rawMultipart(parts: RawPart[]) {
  const boundary = `----tollgate${randomUUID()}`;
  const chunks = parts.map((part) => {
    const file = part.filenameStar !== undefined ? `; filename*=${part.filenameStar}` : part.filename !== undefined ? `; filename="${part.filename}"` : '';
    const type = part.type ? `\r\nContent-Type: ${part.type}` : '';
    return `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${file}${type}\r\n\r\n${part.content}\r\n`;
  });
  return { payload: Buffer.from(`${chunks.join('')}--${boundary}--\r\n`), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const documentsOf = (cloneId: string) =>
  harness.database.db.selectFrom('documents').select(['id', 'title', 'file_name', 'file_path']).where('clone_id', '=', cloneId).orderBy('created_at').execute();

test('no token is 401 before the clone id is looked at (GET and POST, a malformed id too); a bad id with a token is 400', async () => {
  const creator = await createUser(harness.database, 'creator');
  const ok = multipart('a.txt', 'text/plain', 'hello');
  for (const id of ['abc', randomUUID(), '%20', 'x'.repeat(90)]) {
    const url = `/api/clones/${id}/documents`;
    for (const response of [await harness.request({ method: 'GET', url, token: null }), await harness.request({ method: 'POST', url, token: null, ...ok })]) {
      assert.is(response.statusCode, 401, `${id}: ${response.body}`);
      assert.equal(response.json(), { error: { code: 'unauthorized', message: response.json().error.message } });
    }
    const forged = await harness.request({ method: 'GET', url, token: await harness.token(creator, { secret: 'another-secret-0123456789-0123456789' }) });
    assert.is(forged.statusCode, 401, forged.body);
  }
  const token = await harness.token(creator);
  for (const response of [
    await harness.request({ method: 'GET', url: '/api/clones/abc/documents', token }),
    await harness.request({ method: 'POST', url: '/api/clones/abc/documents', token, ...ok }),
  ]) {
    assert.is(response.statusCode, 400, response.body);
    assert.is(response.json().error.code, 'invalid_payload');
  }
});

test('a NUL in the filename or the title is 400 invalid_payload and stores nothing', async () => {
  const creator = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const url = `/api/clones/${cloneId}/documents`;
  const token = await harness.token(creator);
  const bodies = [
    rawMultipart([{ name: 'file', filename: 'a\u0000b.txt', type: 'text/plain', content: 'hello' }]),
    rawMultipart([{ name: 'file', filenameStar: "utf-8''a%00b.txt", type: 'text/plain', content: 'hello' }]),
    rawMultipart([{ name: 'title', content: 'my\u0000notes' }, { name: 'file', filename: 'a.txt', type: 'text/plain', content: 'hello' }]),
    rawMultipart([{ name: 'file', filename: 'a.txt', type: 'text/plain', content: 'hello' }, { name: 'title', content: 'trailing\u0000' }]),
  ];
  for (const body of bodies) {
    const response = await harness.request({ method: 'POST', url, token, ...body });
    assert.is(response.statusCode, 400, response.body);
    assert.is(response.json().error.code, 'invalid_payload');
  }
  assert.equal(await documentsOf(cloneId), []);
});

test('a filename of ".", "..", "" or a path ending in them is stored under a safe default name; a path keeps its last part', async () => {
  const creator = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const url = `/api/clones/${cloneId}/documents`;
  const token = await harness.token(creator);
  const cases: Array<[string, string, string]> = [
    ['.', 'text/plain', 'document.txt'],
    ['..', 'text/markdown', 'document.md'],
    ['', 'text/html', 'document.html'],
    ['../..', 'text/plain', 'document.txt'],
    ['   ', 'text/plain', 'document.txt'],
    ['notes/../../etc/secret.md', 'text/markdown', 'secret.md'],
    ['C:\\\\Users\\\\me\\\\report.txt', 'text/plain', 'report.txt'],
  ];
  for (const [filename, type, expected] of cases) {
    const response = await harness.request({ method: 'POST', url, token, ...rawMultipart([{ name: 'file', filename, type, content: 'hello' }]) });
    assert.is(response.statusCode, 202, `${JSON.stringify(filename)}: ${response.body}`);
    const { document } = response.json();
    assert.is(document.fileName, expected, JSON.stringify(filename));
    assert.is(document.title, expected, JSON.stringify(filename));
    const row = await harness.database.db.selectFrom('documents').select(['title', 'file_name', 'file_path']).where('id', '=', document.id).executeTakeFirstOrThrow();
    assert.equal([row.title, row.file_name], [expected, expected]);
    assert.ok(row.file_path.endsWith(`-${expected}`), row.file_path);
    const file = path.resolve(uploadDir, row.file_path);
    assert.ok(file.startsWith(path.join(uploadDir, cloneId) + path.sep) && existsSync(file), file);
  }
});

test('only the documented parts: one `file` part and an optional `title` field, in either order; anything else is 400 and stores nothing', async () => {
  const creator = await createUser(harness.database, 'creator');
  const cloneId = await cloneOf(creator);
  const url = `/api/clones/${cloneId}/documents`;
  const token = await harness.token(creator);
  const file = { name: 'file', filename: 'a.txt', type: 'text/plain', content: 'hello' };
  const title = { name: 'title', content: 'Notes' };
  const refused: RawPart[][] = [
    [{ ...file, name: 'upload' }],
    [{ ...file, name: 'title' }],
    [file, { ...file, filename: 'b.txt' }],
    [title, title, file],
    [file, title, title],
    [{ name: 'extra', content: 'x' }, file],
    [file, { name: 'extra', content: 'x' }],
    [title, file, { name: 'file', content: 'not a file' }],
    [{ name: 'file', content: 'a field named file, no file' }],
    [title],
  ];
  for (const parts of refused) {
    const response = await harness.request({ method: 'POST', url, token, ...rawMultipart(parts) });
    assert.is(response.statusCode, 400, `${JSON.stringify(parts.map((p) => p.name))}: ${response.body}`);
    assert.is(response.json().error.code, 'invalid_payload');
  }
  assert.equal(await documentsOf(cloneId), [], 'nothing stored for refused uploads');
  assert.equal(readdirIfAny(path.join(uploadDir, cloneId)), [], 'no file written for refused uploads');
  // the title may follow the file
  const after = await harness.request({ method: 'POST', url, token, ...rawMultipart([file, title]) });
  assert.is(after.statusCode, 202, after.body);
  assert.is(after.json().document.title, 'Notes');
});

function readdirIfAny(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

test.run();

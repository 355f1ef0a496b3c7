import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SignJWT } from 'jose';
import { createUser, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;
let consoleDir: string;
let outside: string;

test.before(async () => {
  consoleDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-console-'));
  outside = await mkdtemp(path.join(os.tmpdir(), 'tollgate-outside-'));
  await writeFile(path.join(consoleDir, 'index.html'), '<!doctype html><title>console</title>');
  await writeFile(path.join(consoleDir, 'console.js'), 'export {};');
  await writeFile(path.join(consoleDir, 'console.css'), 'body{}');
  await writeFile(path.join(consoleDir, '.env'), 'SECRET=1');
  await mkdir(path.join(consoleDir, 'img'));
  await writeFile(path.join(consoleDir, 'img', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(path.join(outside, 'secret.txt'), 'outside');
  await symlink(path.join(outside, 'secret.txt'), path.join(consoleDir, 'link.txt'));
  h = await startLedgerApp({ consoleDir });
});
test.after(async () => {
  await h?.close();
  await rm(consoleDir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const API_ROUTES: [string, string][] = [
  ['GET', '/api/ledger/sessions'],
  ['GET', '/api/ledger/sessions/00000000-0000-4000-8000-000000000001'],
  ['GET', '/api/ledger/export.csv'],
  ['GET', '/api/ledger/reconciliation'],
  ['GET', '/api/analytics/creators'],
  ['GET', '/api/analytics/users'],
  ['POST', '/api/ledger/adjustments'],
  ['POST', '/api/users/00000000-0000-4000-8000-000000000001/forget'],
  ['GET', '/api/ledger/movements'],
  ['PUT', '/api/creators/00000000-0000-4000-8000-000000000001/payout-account'],
  ['GET', '/api/payouts/balances'],
  ['POST', '/api/payouts/run'],
  ['GET', '/api/payouts?period=2026-01'],
];

test('every /api route answers 401 unauthorized without a token, with a Bearer challenge', async () => {
  for (const [method, url] of API_ROUTES) {
    const response = await h.request({ method: method as 'GET', url, token: null });
    assert.is(response.statusCode, 401, `${method} ${url}`);
    assert.is(response.json().error.code, 'unauthorized');
    assert.is(response.headers['www-authenticate'], 'Bearer');
  }
});

test('bad tokens are 401: garbage, wrong secret, wrong audience, expired, no exp, another algorithm, not Bearer', async () => {
  const key = new TextEncoder().encode('ledger-test-secret-0123456789-0123456789');
  const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(h.adminId).setAudience('authenticated').sign(key);
  const hs512 = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS512' })
    .setSubject(h.adminId)
    .setAudience('authenticated')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('ledger-test-secret-0123456789-0123456789-0123456789-0123456789'));
  const header = (alg: string) => Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ sub: h.adminId, aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
  const unsigned = `${header('none')}.${payload}.`;
  const tokens = [
    'not-a-jwt',
    await h.token(h.adminId, { secret: 'another-secret-0123456789-0123456789-xx' }),
    await h.token(h.adminId, { audience: 'someone-else' }),
    await h.token(h.adminId, { expiresIn: Math.floor(Date.now() / 1000) - 10 }),
    noExp,
    hs512,
    unsigned,
  ];
  for (const token of tokens) {
    const response = await h.request({ method: 'GET', url: '/api/ledger/sessions', token });
    assert.is(response.statusCode, 401, token);
    assert.equal(Object.keys(response.json().error).sort(), ['code', 'message']);
    assert.is(response.json().error.code, 'unauthorized');
  }
  const basic = await h.app.inject({ method: 'GET', url: '/api/ledger/sessions', headers: { authorization: `Basic ${h.adminToken}` } });
  assert.is(basic.statusCode, 401);
});

test('a valid token of a user who does not exist is 401; of a user or creator 403 forbidden', async () => {
  const ghost = await h.token('00000000-0000-4000-8000-0000000000ff');
  assert.is((await h.request({ method: 'GET', url: '/api/ledger/sessions', token: ghost })).statusCode, 401);
  for (const role of ['user', 'creator'] as const) {
    const id = await createUser(h.database, role);
    const token = await h.token(id);
    for (const [method, url] of API_ROUTES) {
      const response = await h.request({ method: method as 'GET', url, token, payload: method === 'POST' ? {} : undefined });
      assert.is(response.statusCode, 403, `${role} ${method} ${url}`);
      assert.equal(response.json(), { error: { code: 'forbidden', message: 'the billing API is for admins only' } });
    }
  }
});

test('an admin gets through, and API answers are not cached', async () => {
  const response = await h.request({ method: 'GET', url: '/api/ledger/sessions' });
  assert.is(response.statusCode, 200);
  assert.equal(response.json(), { sessions: [], nextCursor: null });
  assert.is(response.headers['cache-control'], 'no-store');
});

test('invalid queries and bodies are 400 invalid_payload naming the field', async () => {
  const cases = [
    '/api/ledger/sessions?limit=0',
    '/api/ledger/sessions?limit=501',
    '/api/ledger/sessions?limit=ten',
    '/api/ledger/sessions?from=yesterday',
    '/api/ledger/sessions?userId=42',
    '/api/ledger/sessions?type=fax',
    '/api/ledger/sessions?cursor=garbage',
    '/api/ledger/sessions/not-a-uuid',
    '/api/ledger/export.csv?to=2025-13-01',
    '/api/ledger/reconciliation?from=2025-03-01T10:00',
    '/api/analytics/creators?from=2025-03-01T00:00:00Z',
    '/api/analytics/users?userId=x',
  ];
  for (const url of cases) {
    const response = await h.request({ method: 'GET', url });
    assert.is(response.statusCode, 400, url);
    assert.is(response.json().error.code, 'invalid_payload', url);
  }
  const limit = await h.request({ method: 'GET', url: '/api/ledger/sessions?limit=0' });
  assert.match(limit.json().error.message, /^limit: /);
  const bad = await h.request({ method: 'POST', url: '/api/ledger/adjustments', headers: { 'content-type': 'application/json' }, payload: '{"x":' });
  assert.is(bad.statusCode, 400);
  assert.is(bad.json().error.code, 'invalid_payload');
});

test('an unknown route is a JSON 404 not_found', async () => {
  const response = await h.request({ method: 'GET', url: '/nope', token: null });
  assert.is(response.statusCode, 404);
  assert.equal(response.json(), { error: { code: 'not_found', message: 'no such route' } });
});

test('/healthz and /metrics are served without a token', async () => {
  const health = await h.request({ method: 'GET', url: '/healthz', token: null });
  assert.is(health.statusCode, 200);
  assert.equal(health.json(), { ok: true, checks: { postgres: 'ok' } });
  const metrics = await h.request({ method: 'GET', url: '/metrics', token: null });
  assert.is(metrics.statusCode, 200);
  assert.match(metrics.headers['content-type'] as string, /^text\/plain/);
});

test('the console: / is index.html, /console/* its files with their content types', async () => {
  const index = await h.request({ method: 'GET', url: '/', token: null });
  assert.is(index.statusCode, 200);
  assert.is(index.headers['content-type'], 'text/html; charset=utf-8');
  assert.is(index.body, '<!doctype html><title>console</title>');
  assert.is(index.headers['x-content-type-options'], 'nosniff');
  const expected: [string, string, string][] = [
    ['/console/console.js', 'text/javascript; charset=utf-8', 'export {};'],
    ['/console/console.css', 'text/css; charset=utf-8', 'body{}'],
    ['/console/img/logo.svg', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"/>'],
    ['/console/', 'text/html; charset=utf-8', '<!doctype html><title>console</title>'],
  ];
  for (const [url, type, body] of expected) {
    const response = await h.request({ method: 'GET', url, token: null });
    assert.is(response.statusCode, 200, url);
    assert.is(response.headers['content-type'], type, url);
    assert.is(response.body, body, url);
  }
  const head = await h.request({ method: 'HEAD', url: '/console/console.css', token: null });
  assert.is(head.statusCode, 200);
  assert.is(head.headers['content-length'], '6');
});

test('the console serves nothing outside its directory, no dotfiles, no directories, no missing files', async () => {
  const urls = [
    '/console/..%2Fpackage.json',
    '/console/..%2F..%2F..%2Fetc%2Fpasswd',
    '/console/%2Fetc%2Fpasswd',
    '/console/img%2F..%2F..%2Fpackage.json',
    '/console/.env',
    '/console/img',
    '/console/link.txt',
    '/console/missing.js',
    '/console/a%00.js',
  ];
  for (const url of urls) {
    const response = await h.request({ method: 'GET', url, token: null });
    assert.is(response.statusCode, 404, url);
    assert.is(response.json().error.code, 'not_found', url);
  }
});

test('raw ../ request lines (no client normalisation) do not escape the console directory', async () => {
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = h.app.server.address() as net.AddressInfo;
  for (const target of ['/console/../../package.json', '/console/../src/main.ts', '/console/img/../../../../etc/passwd']) {
    const head = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('utf8')));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(head, /^HTTP\/1\.1 (404|400) /, `${target}: ${head.slice(0, 80)}`);
    assert.not.match(head, /"name": "tollgate"|root:/);
  }
});

test('without an index.html, / is a JSON 404', async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'tollgate-console-empty-'));
  const other = await startLedgerApp({ consoleDir: empty });
  try {
    const response = await other.request({ method: 'GET', url: '/', token: null });
    assert.is(response.statusCode, 404);
    assert.is(response.json().error.code, 'not_found');
  } finally {
    await other.close();
    await rm(empty, { recursive: true, force: true });
  }
});

test('the default console directory is billing/console', async () => {
  const { DEFAULT_CONSOLE_DIR } = await import('#billing/http/console-files.ts');
  assert.is(path.relative(process.cwd(), DEFAULT_CONSOLE_DIR), path.join('billing', 'console'));
});

test.run();

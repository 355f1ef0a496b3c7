/**
 * The CSV export of 200 001 ledger rows through a real HTTP request: every row arrives, in order, while this
 * process's live heap (server and client alike) grows by less than 60 MB; and a client that leaves mid-export ends
 * the export's transaction and gives its connection back.
 *
 * "Live" heap: heapUsed right after a full GC, sampled every 500 ms and every 2000 chunks read. heapUsed without a GC
 * also counts the garbage V8 has not collected yet (the many short strings of a CSV), which says nothing about what
 * the export holds. Buffering the rows anywhere (a non-cursor query, a string body) would keep them all alive:
 * the 200 001 rows are ~67 MB as CSV text and several times that as row objects.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { createParties } from '../billing/fixtures.ts';
import { startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const SESSIONS = 66_667;
const ENTRIES = SESSIONS * 3;
const HEAP_BOUND = 60 * 1024 * 1024;

let h: LedgerHarness;
let base: string;

test.before(async () => {
  h = await startLedgerApp();
  const parties = await createParties(h.database.db, { credits: '0.0000' });
  // settled sessions one second apart from 2025-01-01, each with its three settlement entries, written directly
  await sql`
    INSERT INTO sessions (id, user_id, clone_id, session_type, status, start_time, end_time, duration_minutes,
                          rate_per_minute, total_cost, active_ms, end_reason, settled_at, state_version)
    SELECT gen_random_uuid(), ${parties.userId}, ${parties.cloneId}, 'chat', 'ended',
           timestamptz '2025-01-01' + g * interval '1 second' - interval '1 minute',
           timestamptz '2025-01-01' + g * interval '1 second', 1, 1.5, 1.5, 60000, 'user', now(), 2
    FROM generate_series(1, ${SESSIONS}::int) g
  `.execute(h.database.db);
  await sql`
    INSERT INTO ledger_entries (session_id, account_kind, account_id, amount, kind)
    SELECT s.id, e.account_kind, CASE e.account_kind WHEN 'user' THEN s.user_id WHEN 'creator' THEN ${parties.creatorId}::uuid END,
           e.amount, e.kind
    FROM sessions s
    CROSS JOIN (VALUES ('user', -1.5, 'session_charge'), ('creator', 1.2, 'creator_earning'), ('platform', 0.3, 'platform_fee'))
      AS e (account_kind, amount, kind)
  `.execute(h.database.db);
  await sql`ANALYZE`.execute(h.database.db);
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
});
test.after(async () => {
  await h?.close();
});

test(`${ENTRIES} ledger rows stream through HTTP in order while the heap grows by less than 60 MB`, async () => {
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let livePeak = baseline;
  let rawPeak = baseline;
  const sampleLive = () => {
    gc();
    livePeak = Math.max(livePeak, process.memoryUsage().heapUsed);
  };
  // a full GC blocks the event loop that also serves the export: sample sparingly
  const timer = setInterval(sampleLive, 500);

  const response = await fetch(`${base}/api/ledger/export.csv?from=2025-01-01&to=2025-02-01`, {
    headers: { authorization: `Bearer ${h.adminToken}` },
  });
  assert.is(response.status, 200);
  assert.is(response.headers.get('content-type'), 'text/csv; charset=utf-8');
  assert.is(response.headers.get('content-length'), null, 'streamed, not buffered to a length');
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let lines = 0;
  let chunks = 0;
  let bytes = 0;
  let partial = '';
  let header = '';
  let previousEnd = '';
  let kindsInOrder = true;
  let expectKind = 0;
  const KINDS = ['session_charge', 'creator_earning', 'platform_fee'];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    rawPeak = Math.max(rawPeak, process.memoryUsage().heapUsed);
    if (++chunks % 2000 === 0) sampleLive();
    const parts = (partial + value).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines += 1;
      if (lines === 1) {
        header = line;
        continue;
      }
      const fields = line.split(',');
      const end = fields[6]!;
      if (end < previousEnd) throw new Error(`out of order at line ${lines}: ${end} after ${previousEnd}`);
      previousEnd = end;
      if (fields[11] !== KINDS[expectKind]) kindsInOrder = false;
      expectKind = (expectKind + 1) % 3;
    }
  }
  clearInterval(timer);
  assert.is(partial, '');
  assert.ok(header.startsWith('session_id,user_id,clone_id,creator_id,'));
  assert.is(lines, ENTRIES + 1, 'the header and every entry');
  assert.ok(kindsInOrder, 'each session: charge, earning, fee');
  assert.is(previousEnd, new Date(Date.UTC(2025, 0, 1) + SESSIONS * 1000).toISOString());
  assert.ok(bytes > 50 * 1024 * 1024, `a big export (${(bytes / 1048576).toFixed(1)} MB)`);
  const mb = (n: number) => (n / 1048576).toFixed(1);
  const growth = livePeak - baseline;
  assert.ok(growth < HEAP_BOUND, `live heap grew by ${mb(growth)} MB`);
  console.log(
    `  export: ${lines} lines, ${mb(bytes)} MB of CSV; live heap growth ${mb(growth)} MB (heapUsed with garbage: +${mb(rawPeak - baseline)} MB)`,
  );
});

test('a client that leaves mid-export ends the transaction and frees the connection', async () => {
  const exporting = async () => {
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
        AND query LIKE '%ledger_export%'
    `.execute(h.database.db);
    return rows[0]!.n;
  };
  const controller = new AbortController();
  try {
    const response = await fetch(`${base}/api/ledger/export.csv`, {
      headers: { authorization: `Bearer ${h.adminToken}` },
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    assert.is(await exporting(), 1, 'the export holds its cursor while the client reads');
  } finally {
    controller.abort();
  }
  const deadline = Date.now() + 10_000;
  while ((await exporting()) !== 0) {
    if (Date.now() > deadline) throw new Error('the export transaction was not ended after the client left');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  // the pool still serves requests
  const again = await fetch(`${base}/api/ledger/sessions?limit=1`, { headers: { authorization: `Bearer ${h.adminToken}` } });
  assert.is(again.status, 200);
  await again.text();
});

test.run();

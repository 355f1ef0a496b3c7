import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LEDGER_CSV_COLUMNS } from '#billing/ledger/ledger-export.ts';
import { createParties } from '../billing/fixtures.ts';
import { settledSession, startLedgerApp, type LedgerHarness } from './ledger-harness.ts';

let h: LedgerHarness;

test.before(async () => {
  h = await startLedgerApp();
});
test.after(async () => {
  await h?.close();
});

/** A minimal RFC 4180 reader for the assertions (quoted fields with "" escapes, CRLF or LF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) row.push(field), rows.push(row);
  return rows;
}

test('the export is CSV, one line per ledger entry of the sessions ending in the range, in order', async () => {
  const a = await createParties(h.database.db, { credits: '500.0000' });
  const b = await createParties(h.database.db, { credits: '500.0000' });
  const first = await settledSession(h.database, h.config, a, { start: '2025-03-01T09:00:00.000Z', type: 'voice' });
  const second = await settledSession(h.database, h.config, b, {
    start: '2025-03-01T23:50:00.000Z',
    end: '2025-03-01T23:55:30.250Z',
    reason: 'odd, "quoted"\nreason',
  });
  const before = await settledSession(h.database, h.config, a, { start: '2025-02-28T09:00:00.000Z' });
  const after = await settledSession(h.database, h.config, a, { start: '2025-03-02T00:00:00.000Z' });
  const refund = await h.request({
    method: 'POST',
    url: '/api/ledger/adjustments',
    payload: { idempotencyKey: randomUUID(), sessionId: first.sessionId, amount: '1.0000', reason: 'x' },
  });
  assert.is(refund.statusCode, 201);
  const adjustment = refund.json();

  const response = await h.request({ method: 'GET', url: '/api/ledger/export.csv?from=2025-03-01&to=2025-03-02' });
  assert.is(response.statusCode, 200, response.body);
  assert.is(response.headers['content-type'], 'text/csv; charset=utf-8');
  assert.is(response.headers['content-disposition'], 'attachment; filename="ledger-2025-03-01-2025-03-02.csv"');
  const rows = parseCsv(response.body);
  assert.equal(rows[0], [...LEDGER_CSV_COLUMNS]);
  assert.equal(
    rows[0]!.join(','),
    'session_id,user_id,clone_id,creator_id,session_type,start_time,end_time,active_ms,total_cost,end_reason,entry_id,entry_kind,account_kind,account_id,amount,adjustment_id,entry_created_at',
  );
  const body = rows.slice(1);
  assert.is(body.length, 9, '3 + 3 adjustment entries of the first session, 3 of the second');
  const ledger = await h.database.db.selectFrom('ledger_entries').selectAll().execute();
  const entry = (id: string) => ledger.find((e) => e.id === id)!;
  assert.equal(body.map((r) => r[0]), [...Array(6).fill(first.sessionId), ...Array(3).fill(second.sessionId)]);
  assert.equal(
    body.map((r) => [r[11], r[12], r[14], r[15] !== '']),
    [
      ['session_charge', 'user', '-15.0000', false],
      ['creator_earning', 'creator', '12.0000', false],
      ['platform_fee', 'platform', '3.0000', false],
      ['adjustment', 'user', '1.0000', true],
      ['adjustment', 'creator', '-0.8000', true],
      ['adjustment', 'platform', '-0.2000', true],
      ['session_charge', 'user', '-8.2563', false],
      ['creator_earning', 'creator', '6.6050', false],
      ['platform_fee', 'platform', '1.6513', false],
    ],
  );
  assert.equal(body[0], [
    first.sessionId,
    a.userId,
    a.cloneId,
    a.creatorId,
    'voice',
    '2025-03-01T09:00:00.000Z',
    '2025-03-01T09:10:00.000Z',
    '600000',
    '15.0000',
    'user',
    body[0]![10]!,
    'session_charge',
    'user',
    a.userId,
    '-15.0000',
    '',
    entry(body[0]![10]!).created_at.toISOString(),
  ]);
  assert.is(body[3]![15], adjustment.adjustment.id);
  assert.is(body[5]![13], '', 'the platform has no account id');
  assert.is(body[6]![9], 'odd, "quoted"\nreason', 'a field with a comma, quotes and a newline survives');
  assert.is(body[6]![6], '2025-03-01T23:55:30.250Z');
  for (const row of body) assert.is(row.length, LEDGER_CSV_COLUMNS.length);
  const ids = new Set(body.map((r) => r[0]));
  assert.not.ok(ids.has(before.sessionId) || ids.has(after.sessionId));

  const all = await h.request({ method: 'GET', url: '/api/ledger/export.csv' });
  assert.is(all.headers['content-disposition'], 'attachment; filename="ledger-start-end.csv"');
  const allRows = parseCsv(all.body).slice(1);
  assert.is(allRows.length, 15);
  assert.equal([...new Set(allRows.map((r) => r[0]))], [before.sessionId, first.sessionId, second.sessionId, after.sessionId]);
});

test('an empty range exports the header only; a datetime range names the file with safe characters', async () => {
  const response = await h.request({ method: 'GET', url: '/api/ledger/export.csv?from=2030-01-01T00:00:00%2B02:00&to=2030-01-02T00:00:00Z' });
  assert.is(response.statusCode, 200);
  assert.is(response.body.trim(), LEDGER_CSV_COLUMNS.join(','));
  assert.is(response.headers['content-disposition'], 'attachment; filename="ledger-2030-01-01T00-00-00-02-00-2030-01-02T00-00-00Z.csv"');
});

test.run();

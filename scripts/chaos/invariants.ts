/**
 * What must hold in Postgres after any run (shared/RELIABILITY.md), checked from the rows themselves and from
 * what the simulated users were acknowledged. Each check is a line; the run passes only if every one holds.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { formatMoney, parseMoney, type Units } from '#shared/money/money.ts';
import { timeCost } from '#shared/money/pricing.ts';
import type { LoadRecord } from './simulated-users.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface InvariantReport {
  checks: Check[];
  sessions: number;
  messages: number;
  /** Acknowledged messages missing, and credits that left users without a matching session charge. */
  lost: number;
  /** Messages stored twice, and credits users got (or sessions charged) beyond what the ledger explains. */
  created: number;
}

const sum = (values: Units[]) => values.reduce((a, b) => a + b, 0n);

export async function checkInvariants(db: Kysely<Database>, record: LoadRecord, initialCredits: Map<string, Units>): Promise<InvariantReport> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  // 1. every ledger transaction sums to 0
  const unbalanced = await sql<{ session_id: string; total: string }>`
    select session_id, sum(amount)::text as total from ledger_entries group by session_id, coalesce(adjustment_id::text, '') having sum(amount) <> 0`.execute(db);
  const transactions = await sql<{ n: string }>`select count(distinct (session_id, coalesce(adjustment_id::text, '')))::text as n from ledger_entries`.execute(db);
  check('every ledger transaction sums to 0', unbalanced.rows.length === 0, `${transactions.rows[0]?.n ?? 0} transactions, ${unbalanced.rows.length} unbalanced`);

  // 2. Σ user debits = Σ session totals = Σ creator earnings + Σ platform fees
  const entries = await db.selectFrom('ledger_entries').select(['kind', 'amount', 'session_id']).where('kind', '<>', 'adjustment').execute();
  const byKind = (kind: string) => sum(entries.filter((e) => e.kind === kind).map((e) => parseMoney(e.amount.replace('-', ''))));
  const sessions = await db.selectFrom('sessions').selectAll().execute();
  const debits = byKind('session_charge');
  const totals = sum(sessions.filter((s) => s.settled_at !== null).map((s) => parseMoney(s.total_cost)));
  const earnings = byKind('creator_earning');
  const fees = byKind('platform_fee');
  check('Σ user debits = Σ session totals = Σ creator earnings + Σ platform fees', debits === totals && totals === earnings + fees,
    `${formatMoney(debits)} = ${formatMoney(totals)} = ${formatMoney(earnings)} + ${formatMoney(fees)}`);

  // 3. every user's credits = initial − Σ debits + Σ adjustments, and ≥ 0
  const users = await db.selectFrom('user_profiles').select(['id', 'credits_remaining']).where('id', 'in', [...initialCredits.keys()]).execute();
  const charged = new Map<string, Units>();
  for (const s of sessions) if (s.settled_at !== null) charged.set(s.user_id, (charged.get(s.user_id) ?? 0n) + parseMoney(s.total_cost));
  const adjustments = await db.selectFrom('ledger_adjustments').select(['user_id', 'amount']).execute();
  const adjusted = new Map<string, Units>();
  for (const a of adjustments) adjusted.set(a.user_id, (adjusted.get(a.user_id) ?? 0n) + parseMoney(a.amount.replace('-', '')) * (a.amount.startsWith('-') ? -1n : 1n));
  let wrongBalances = 0;
  let negative = 0;
  let creditsLost = 0n;
  let creditsCreated = 0n;
  for (const u of users) {
    const have = parseMoney(u.credits_remaining);
    const expected = initialCredits.get(u.id)! - (charged.get(u.id) ?? 0n) + (adjusted.get(u.id) ?? 0n);
    if (have !== expected) wrongBalances += 1;
    if (have < expected) creditsLost += expected - have;
    if (have > expected) creditsCreated += have - expected;
    if (have < 0n) negative += 1;
  }
  check('every user\'s credits = initial − Σ debits + Σ adjustments, ≥ 0', wrongBalances === 0 && negative === 0 && users.length === initialCredits.size,
    `${users.length} users, ${wrongBalances} off (lost ${formatMoney(creditsLost)}, created ${formatMoney(creditsCreated)}), ${negative} below 0`);

  // 4. every acknowledged message stored exactly once (ids are primary keys; a repeat never made a second row)
  const stored = await db.selectFrom('messages').select(['id', 'session_id', 'sender_type', 'client_message_id', 'cost_increment']).execute();
  const storedIds = new Set(stored.map((m) => m.id));
  const missingAcked = [...record.acked.keys()].filter((id) => !storedIds.has(id));
  const missingReplies = [...record.completedReplies].filter((id) => !storedIds.has(id));
  const clientKeys = new Map<string, number>();
  for (const m of stored) if (m.client_message_id) clientKeys.set(`${m.session_id}/${m.client_message_id}`, (clientKeys.get(`${m.session_id}/${m.client_message_id}`) ?? 0) + 1);
  const storedTwice = [...clientKeys.values()].filter((n) => n > 1).length + record.duplicatesCreated;
  check('every acknowledged message stored exactly once', missingAcked.length === 0 && missingReplies.length === 0 && storedTwice === 0,
    `${record.acked.size} acknowledged + ${record.completedReplies.size} completed replies; missing ${missingAcked.length} + ${missingReplies.length}, stored twice ${storedTwice}`);

  // 5. no session open or unsettled
  const unfinished = sessions.filter((s) => s.status !== 'ended' || s.settled_at === null);
  const unknownStarts = [...record.sessions].filter((id) => !sessions.some((s) => s.id === id));
  check('no session open or unsettled', unfinished.length === 0 && unknownStarts.length === 0,
    `${sessions.length} sessions, ${unfinished.length} open or unsettled, ${unknownStarts.length} acknowledged starts missing`);

  // 6. every session's total recomputes from its intervals (session_events) and its messages
  const events = await db.selectFrom('session_events').select(['session_id', 'version', 'kind', 'at', 'active_ms']).orderBy('session_id').orderBy('version').execute();
  const eventsOf = new Map<string, typeof events>();
  for (const e of events) eventsOf.set(e.session_id, [...(eventsOf.get(e.session_id) ?? []), e]);
  const aiCost = new Map<string, Units>();
  for (const m of stored) if (m.sender_type === 'ai') aiCost.set(m.session_id, (aiCost.get(m.session_id) ?? 0n) + parseMoney(m.cost_increment));
  let mismatched = 0;
  let stateLost = 0;
  const mismatches: string[] = [];
  for (const s of sessions) {
    if (s.settled_at === null) continue;
    if (s.end_reason === 'state_lost') {
      stateLost += 1; // settled at its last checkpoint: nothing later to recompute from
      if (parseMoney(s.total_cost) !== parseMoney(s.checkpoint_cost ?? '0')) mismatched += 1;
      continue;
    }
    const list = eventsOf.get(s.id) ?? [];
    let activeMs = 0;
    let activeSince: number | null = null;
    let ok = list.length > 0 && list.every((e, i) => e.version === i + 1);
    for (const e of list) {
      const at = new Date(e.at).getTime();
      if (activeSince !== null) activeMs += at - activeSince;
      activeSince = e.kind === 'started' || e.kind === 'resumed' ? at : null;
      if (Number(e.active_ms) !== activeMs) ok = false;
    }
    if (Number(s.active_ms) !== activeMs) ok = false;
    const recomputed = timeCost(parseMoney(s.rate_per_minute), activeMs) + (aiCost.get(s.id) ?? 0n);
    const total = parseMoney(s.total_cost);
    // credits running out trims the last unit(s) of rounding so the user never pays more than they had
    if (s.end_reason === 'credits_exhausted' ? total > recomputed : total !== recomputed) ok = false;
    if (!ok) {
      mismatched += 1;
      if (mismatches.length < 3) mismatches.push(`${s.id}: total ${s.total_cost}, recomputed ${formatMoney(recomputed)} from ${list.length} events`);
    }
  }
  check('every session\'s total recomputes from its intervals and messages', mismatched === 0,
    `${sessions.length - stateLost} recomputed from ${events.length} events, ${stateLost} settled at a checkpoint (state_lost), ${mismatched} off${mismatches.length ? `: ${mismatches.join('; ')}` : ''}`);

  // 7. duplicates were really produced and absorbed
  check('duplicates absorbed', record.duplicatesAbsorbed > 0 && record.duplicatesCreated === 0,
    `${record.duplicatesAbsorbed} repeats answered with the first message, ${record.duplicatesCreated} stored anew`);

  return {
    checks,
    sessions: sessions.length,
    messages: stored.length,
    lost: missingAcked.length + missingReplies.length + (creditsLost > 0n ? 1 : 0),
    created: storedTwice + (creditsCreated > 0n ? 1 : 0),
  };
}

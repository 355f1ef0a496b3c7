/**
 * Writes many billing facts — messages, state changes, checkpoints, of any sessions — in two statements: one that
 * creates (or checks) their sessions, one that inserts the messages (multi-row, ON CONFLICT DO NOTHING), moves each
 * session to its newest state and latest checkpoint and appends the state changes to the audit trail. The rules are
 * those of the single jobs, applied to the whole batch at once:
 * - a message is stored once by its id, and a user message once per (session, clientMessageId), whether the
 *   duplicate is in the same batch, an earlier one, or a retried one;
 * - the status only moves to a newer version, the checkpoint only to a later instant, nothing changes after the
 *   settlement; several facts of one session in a batch are folded into the one update they would add up to;
 * - every state version lands on the audit trail once, however late.
 * Facts whose header is refused (unknown user or clone, another session's parties) are not written; each gets its
 * error back, the others are written.
 */
import { sql, type Kysely } from 'kysely';
import type { MessageJob, SessionCheckpointJob, SessionHeader, SessionStateJob } from '#shared/contract/billing-jobs.ts';
import type { Database, SessionEventKind, SessionStatus } from '#shared/db/schema.ts';
import type { BillingJobError } from './billing-job-error.ts';
import { ensureSessions } from './ensure-session.ts';

export type Fact =
  | { name: 'message'; data: MessageJob }
  | { name: 'session-state'; data: SessionStateJob }
  | { name: 'session-checkpoint'; data: SessionCheckpointJob };

/**
 * What became of one fact: `written` is true when it changed something (a message stored; a newer state or later
 * checkpoint taken), false when it was already there or stale; or the error refusing it.
 */
export type FactOutcome = { written: boolean } | { error: BillingJobError };

/** The newest state and latest checkpoint a session's facts in one batch add up to. */
interface SessionUpdate {
  session_id: string;
  /** The newest state (null when the batch has only checkpoints of the session). */
  version: number | null;
  status: string | null;
  /** The latest checkpoint. */
  at: string;
  cost: string;
  active_ms: number;
  message_count: number;
  /** Indexes (in the batch) of the facts that carry the newest state and the latest checkpoint. */
  stateFact: number | null;
  checkpointFact: number;
}

/** The audit trail's kind of a state version: started for the first version, resumed for later activations. */
function eventKind(status: SessionStatus, version: number): SessionEventKind {
  if (status === 'ended') return 'ended';
  if (status === 'paused') return 'paused';
  return version === 1 ? 'started' : 'resumed';
}

const headerOf = (fact: Fact): SessionHeader => fact.data.session;
const byKey = <T>(key: (item: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

export async function writeFacts(db: Kysely<Database>, facts: readonly Fact[]): Promise<FactOutcome[]> {
  const check = await ensureSessions(db, facts.map(headerOf));
  const outcomes: (FactOutcome | undefined)[] = facts.map((fact) => {
    const error = check(headerOf(fact));
    return error ? { error } : undefined;
  });

  // Messages: the first fact of each id, and of each (session, client message id), is the one that may store it —
  // as if the batch ran in order (the INSERT itself runs in id order, the order concurrent writers lock in).
  const messageFacts = new Map<string, number>();
  const clientIds = new Set<string>();
  const updates = new Map<string, SessionUpdate>();
  const events = new Map<string, { session_id: string; version: number; kind: string; at: string; active_ms: number; reason: string | null }>();
  facts.forEach((fact, index) => {
    if (outcomes[index]) return;
    if (fact.name === 'message') {
      const { id, clientMessageId } = fact.data.message;
      const clientKey = clientMessageId === null ? undefined : `${fact.data.session.sessionId}/${clientMessageId}`;
      if (messageFacts.has(id) || (clientKey !== undefined && clientIds.has(clientKey))) return;
      messageFacts.set(id, index);
      if (clientKey !== undefined) clientIds.add(clientKey);
      return;
    }
    const sessionId = fact.data.session.sessionId;
    const at = new Date(fact.data.at).toISOString();
    const state = fact.name === 'session-state' ? fact.data : undefined;
    let update = updates.get(sessionId);
    if (!update) {
      update = { session_id: sessionId, version: null, status: null, at, cost: fact.data.cost, active_ms: fact.data.activeMs, message_count: fact.data.messageCount, stateFact: null, checkpointFact: index };
      updates.set(sessionId, update);
    } else if (Date.parse(at) > Date.parse(update.at)) {
      Object.assign(update, { at, cost: fact.data.cost, active_ms: fact.data.activeMs, message_count: fact.data.messageCount, checkpointFact: index });
    }
    if (state) {
      if (update.version === null || state.version > update.version) {
        Object.assign(update, { version: state.version, status: state.status, stateFact: index });
      }
      const key = `${sessionId}/${state.version}`;
      if (!events.has(key)) {
        events.set(key, { session_id: sessionId, version: state.version, kind: eventKind(state.status, state.version), at, active_ms: state.activeMs, reason: state.reason || null });
      }
    }
  });

  const messages = [...messageFacts.values()]
    .map((index) => (facts[index] as Extract<Fact, { name: 'message' }>).data)
    .map(({ session, message }) => ({
      id: message.id,
      session_id: session.sessionId,
      sender_type: message.senderType,
      content: message.content,
      cost_increment: message.costIncrement,
      tokens_used: message.tokensUsed,
      client_message_id: message.clientMessageId,
      created_at: message.createdAt,
      citations: message.senderType === 'ai' ? message.citations : null,
    }))
    .sort(byKey((m) => m.id));
  const sessionUpdates = [...updates.values()].sort(byKey((u) => u.session_id));
  const trail = [...events.values()].sort(byKey((e) => `${e.session_id}/${String(e.version).padStart(10, '0')}`));

  const written = new Set<string>();
  if (messages.length + sessionUpdates.length + trail.length > 0) {
    const parts = [];
    if (messages.length > 0) {
      // No conflict target: either unique key (id, or session_id + client_message_id) means "already stored".
      parts.push(sql`m AS (
        INSERT INTO messages (id, session_id, sender_type, content, cost_increment, tokens_used, client_message_id, created_at, citations)
        SELECT id, session_id, sender_type, content, cost_increment, tokens_used, client_message_id, created_at, citations
          FROM jsonb_to_recordset(${JSON.stringify(messages)}::jsonb)
            AS x(id uuid, session_id uuid, sender_type text, content text, cost_increment numeric, tokens_used integer,
                 client_message_id text, created_at timestamptz, citations jsonb)
         ORDER BY id
        ON CONFLICT DO NOTHING
        RETURNING 'message:' || id AS written
      )`);
    }
    if (sessionUpdates.length > 0) {
      const rows = sessionUpdates.map(({ stateFact: _s, checkpointFact: _c, ...row }) => row);
      // The rows are locked in id order first (as settlements lock them), so concurrent batches cannot deadlock.
      parts.push(sql`x AS (
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          AS x(session_id uuid, version integer, status text, at timestamptz, cost numeric, active_ms bigint, message_count integer)
      ), locked AS (
        SELECT s.id FROM sessions s WHERE s.id IN (SELECT session_id FROM x) ORDER BY s.id FOR NO KEY UPDATE
      ), u AS (
        UPDATE sessions s SET
          status = CASE WHEN s.state_version < coalesce(x.version, 0) THEN x.status ELSE s.status END,
          state_version = greatest(s.state_version, coalesce(x.version, 0)),
          checkpoint_cost = CASE WHEN s.checkpoint_at IS NULL OR s.checkpoint_at < x.at THEN x.cost ELSE s.checkpoint_cost END,
          active_ms = CASE WHEN s.checkpoint_at IS NULL OR s.checkpoint_at < x.at THEN x.active_ms ELSE s.active_ms END,
          message_count = CASE WHEN s.checkpoint_at IS NULL OR s.checkpoint_at < x.at THEN x.message_count ELSE s.message_count END,
          checkpoint_at = CASE WHEN s.checkpoint_at IS NULL OR s.checkpoint_at < x.at THEN x.at ELSE s.checkpoint_at END
        FROM x JOIN locked l ON l.id = x.session_id
        WHERE s.id = x.session_id
          AND s.settled_at IS NULL
          AND (s.state_version < coalesce(x.version, 0) OR s.checkpoint_at IS NULL OR s.checkpoint_at < x.at)
        RETURNING 'session:' || s.id AS written
      )`);
    }
    if (trail.length > 0) {
      parts.push(sql`e AS (
        INSERT INTO session_events (session_id, version, kind, at, active_ms, reason)
        SELECT session_id, version, kind, at, active_ms, reason
          FROM jsonb_to_recordset(${JSON.stringify(trail)}::jsonb)
            AS e(session_id uuid, version integer, kind text, at timestamptz, active_ms bigint, reason text)
         ORDER BY session_id, version
        ON CONFLICT (session_id, version) DO NOTHING
      )`);
    }
    const selects = [];
    if (messages.length > 0) selects.push(sql`SELECT written FROM m`);
    if (sessionUpdates.length > 0) selects.push(sql`SELECT written FROM u`);
    if (selects.length === 0) selects.push(sql`SELECT NULL::text AS written WHERE false`);
    const { rows } = await sql<{ written: string }>`
      WITH ${sql.join(parts, sql`, `)}
      ${sql.join(selects, sql` UNION ALL `)}
    `.execute(db);
    for (const row of rows) written.add(row.written);
  }

  return facts.map((fact, index): FactOutcome => {
    const refused = outcomes[index];
    if (refused) return refused;
    if (fact.name === 'message') {
      return { written: messageFacts.get(fact.data.message.id) === index && written.has(`message:${fact.data.message.id}`) };
    }
    // The session's update carries this fact's state or checkpoint (or both) and changed the row.
    const update = updates.get(fact.data.session.sessionId)!;
    const carried = update.stateFact === index || update.checkpointFact === index;
    return { written: carried && written.has(`session:${update.session_id}`) };
  });
}

/**
 * Every billing job carries the session header, so whichever job runs first creates the `sessions` row
 * (jobs of one session may run in any order). A row that exists already is checked against the header.
 */
import { sql, type Kysely } from 'kysely';
import type { SessionHeader } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { BillingJobError } from './billing-job-error.ts';

interface StoredSession {
  id: string;
  user_id: string;
  clone_id: string;
}

/** Why a header is refused: undefined when it matches its stored session. */
export type HeaderCheck = (header: SessionHeader) => BillingJobError | undefined;

/**
 * Inserts the sessions of `headers` that do not exist (one statement, in id order so concurrent batches cannot
 * deadlock on each other's new rows) and checks the others. Returns a check giving, for any of the headers, the
 * error that refuses it — `unknown_reference` when its user or clone does not exist (nothing is inserted),
 * `session_mismatch` when the stored session has another user or clone — or undefined when it is fine.
 */
export async function ensureSessions(
  db: Kysely<Database>,
  headers: readonly SessionHeader[],
): Promise<HeaderCheck> {
  if (headers.length === 0) return () => undefined;
  const first = new Map<string, SessionHeader>();
  for (const header of headers) if (!first.has(header.sessionId)) first.set(header.sessionId, header);
  const rows = [...first.values()]
    .sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1))
    .map((h) => ({
      id: h.sessionId,
      user_id: h.userId,
      clone_id: h.cloneId,
      session_type: h.type,
      start_time: h.startTime,
      rate_per_minute: h.ratePerMinute,
    }));
  // The inserted rows come back from the INSERT; the others from the SELECT (same snapshot, so it cannot see them).
  const { rows: found } = await sql<StoredSession>`
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS v(id uuid, user_id uuid, clone_id uuid, session_type text, start_time timestamptz, rate_per_minute numeric)
    ), inserted AS (
      INSERT INTO sessions (id, user_id, clone_id, session_type, status, start_time, rate_per_minute)
      SELECT v.id, v.user_id, v.clone_id, v.session_type, 'active', v.start_time, v.rate_per_minute
        FROM v
       WHERE EXISTS (SELECT 1 FROM user_profiles u WHERE u.id = v.user_id)
         AND EXISTS (SELECT 1 FROM clones c WHERE c.id = v.clone_id)
       ORDER BY v.id
      ON CONFLICT (id) DO NOTHING
      RETURNING id, user_id, clone_id
    )
    SELECT id, user_id, clone_id FROM inserted
    UNION ALL
    SELECT s.id, s.user_id, s.clone_id FROM sessions s WHERE s.id IN (SELECT id FROM v)
  `.execute(db);
  const stored = new Map(found.map((row) => [row.id, row]));
  // Committed by another transaction while this statement ran (its INSERT waited for it, its SELECT could not see it).
  const unseen = [...first.keys()].filter((id) => !stored.has(id));
  if (unseen.length > 0) {
    const late = await db.selectFrom('sessions').select(['id', 'user_id', 'clone_id']).where('id', 'in', unseen).execute();
    for (const row of late) stored.set(row.id, row);
  }
  return (header) => {
    const row = stored.get(header.sessionId);
    if (!row) {
      return new BillingJobError('unknown_reference', `session ${header.sessionId} names an unknown user or clone`, {
        sessionId: header.sessionId,
        userId: header.userId,
        cloneId: header.cloneId,
      });
    }
    if (row.user_id !== header.userId || row.clone_id !== header.cloneId) {
      return new BillingJobError('session_mismatch', `session ${header.sessionId} belongs to another user or clone`, {
        sessionId: header.sessionId,
        stored: { userId: row.user_id, cloneId: row.clone_id },
        job: { userId: header.userId, cloneId: header.cloneId },
      });
    }
    return undefined;
  };
}

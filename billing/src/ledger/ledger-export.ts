/**
 * The ledger as CSV, streamed: one line per ledger entry (settlement and adjustments) of the sessions ending in a
 * range, ordered by end_time, session id and entry time. A server-side cursor in a read-only REPEATABLE READ
 * transaction (one consistent snapshot) is fetched a batch at a time, only as fast as the client reads the CSV, so
 * memory stays constant for any number of rows. The transaction ends when the stream ends, fails or is destroyed
 * (a client that goes away).
 */
import { Readable, pipeline } from 'node:stream';
import { stringify } from 'csv-stringify';
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { ledgerEntryOrder } from './ledger-entry-view.ts';
import type { TimeRange } from './time-range.ts';

/** The CSV header, in column order. */
export const LEDGER_CSV_COLUMNS = [
  'session_id',
  'user_id',
  'clone_id',
  'creator_id',
  'session_type',
  'start_time',
  'end_time',
  'active_ms',
  'total_cost',
  'end_reason',
  'entry_id',
  'entry_kind',
  'account_kind',
  'account_id',
  'amount',
  'adjustment_id',
  'entry_created_at',
] as const;

type ExportRow = Record<(typeof LEDGER_CSV_COLUMNS)[number], string | null>;

export interface LedgerExportOptions {
  /** Rows per FETCH. Default 1000. */
  batchSize?: number;
  /** Told when the stream fails after it started (the response is then cut short). Default: ignored. */
  onError?: (error: Error) => void;
}

const iso = (column: string) => sql`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Opens the cursor (so a failing database is an error here, before any byte is sent) and returns the CSV text
 * stream, header first.
 */
export async function openLedgerExport(
  db: Kysely<Database>,
  range: TimeRange,
  options: LedgerExportOptions = {},
): Promise<Readable> {
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer: ${batchSize}`);
  const trx = await db.startTransaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute();
  try {
    await sql`
      DECLARE ledger_export NO SCROLL CURSOR FOR
      SELECT s.id AS session_id, s.user_id, s.clone_id, c.creator_id, s.session_type,
             ${iso('s.start_time')} AS start_time, ${iso('s.end_time')} AS end_time,
             s.active_ms::text AS active_ms, s.total_cost::text AS total_cost, s.end_reason,
             l.id AS entry_id, l.kind AS entry_kind, l.account_kind, l.account_id, l.amount::text AS amount,
             l.adjustment_id, ${iso('l.created_at')} AS entry_created_at
      FROM sessions s
      JOIN clones c ON c.id = s.clone_id
      JOIN ledger_entries l ON l.session_id = s.id
      WHERE s.settled_at IS NOT NULL
        ${range.from ? sql`AND s.end_time >= ${range.from}` : sql``}
        ${range.to ? sql`AND s.end_time < ${range.to}` : sql``}
      ORDER BY s.end_time, s.id, ${ledgerEntryOrder('l')}
    `.execute(trx);
  } catch (error) {
    await trx.rollback().execute().catch(() => undefined);
    throw error;
  }

  async function* rows(): AsyncGenerator<ExportRow> {
    let finished = false;
    try {
      for (;;) {
        const batch = await sql<ExportRow>`FETCH FORWARD ${sql.lit(batchSize)} FROM ledger_export`.execute(trx);
        if (batch.rows.length === 0) break;
        yield* batch.rows;
      }
      await trx.commit().execute();
      finished = true;
    } finally {
      // destroyed early (the client left) or failed: end the transaction, which closes the cursor
      if (!finished) await trx.rollback().execute().catch(() => undefined);
    }
  }

  const csv = stringify({ header: true, columns: [...LEDGER_CSV_COLUMNS] });
  return pipeline(Readable.from(rows()), csv, (error) => {
    if (error && error.code !== 'ERR_STREAM_PREMATURE_CLOSE') options.onError?.(error);
  });
}

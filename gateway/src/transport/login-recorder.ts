/**
 * `LoginRecorder`: checks at each handshake that the token's user exists and records their `last_login`, without a
 * Postgres write per connection. Handshakes arriving together share one statement (one query in flight; those that
 * arrive meanwhile form the next batch), and `last_login` is only rewritten when it is older than `refreshMs`, so
 * a reconnect storm of the same users reads rows instead of writing them. Existence is asked every time (never
 * cached): a deleted user's token stops working at once.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';

export interface LoginRecorderOptions {
  /** `last_login` is rewritten only when older than this (default 60 000 ms). */
  refreshMs?: number;
  /** Most users one statement asks about (default 500). */
  maxBatch?: number;
}

interface Waiter {
  resolve(exists: boolean): void;
  reject(error: unknown): void;
}

export class LoginRecorder {
  private readonly refreshMs: number;
  private readonly maxBatch: number;
  private readonly pending = new Map<string, Waiter[]>();
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    options: LoginRecorderOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? 60_000;
    this.maxBatch = options.maxBatch ?? 500;
  }

  /** True when the user exists (their login recorded); false for an unknown user. Rejects when Postgres fails. */
  record(userId: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const waiters = this.pending.get(userId);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(userId, [{ resolve, reject }]);
      // handshakes of the same turn of the event loop join; one statement at a time
      this.flushing ??= new Promise<void>((done) => setImmediate(done)).then(() => this.drain());
    });
  }

  /** Asks about the pending users, a batch at a time, until none is left (flush never throws). */
  private async drain(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = new Map<string, Waiter[]>();
      for (const [userId, waiters] of this.pending) {
        if (batch.size >= this.maxBatch) break;
        batch.set(userId, waiters);
      }
      for (const userId of batch.keys()) this.pending.delete(userId);
      await this.flush(batch);
    }
    this.flushing = undefined;
  }

  private async flush(batch: Map<string, Waiter[]>): Promise<void> {
    const ids = [...batch.keys()];
    try {
      const { rows } = await sql<{ id: string }>`
        WITH found AS (
          SELECT id, last_login FROM user_profiles WHERE id = ANY(${ids}::uuid[]) AND deleted_at IS NULL
        ), touched AS (
          UPDATE user_profiles u SET last_login = now()
          FROM found f
          WHERE u.id = f.id AND (f.last_login IS NULL OR f.last_login < now() - make_interval(secs => ${this.refreshMs / 1000}))
          RETURNING u.id
        )
        SELECT id FROM found
      `.execute(this.db);
      const existing = new Set(rows.map((row) => row.id));
      for (const [userId, waiters] of batch) for (const waiter of waiters) waiter.resolve(existing.has(userId));
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }
}

/**
 * Deleting a person while keeping the money records: `tollgate_forget_user` (migration 0012) clears the profile's
 * personal columns, empties the text of their sessions' messages and feedback and unpublishes their clones, and
 * leaves sessions, message costs and the ledger as they were. Idempotent: forgetting someone again changes nothing
 * and answers the same instant.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';

export interface ForgottenUser {
  id: string;
  /** When the person was first forgotten (ISO 8601). */
  deletedAt: string;
}

export async function forgetUser(db: Kysely<Database>, userId: string): Promise<ForgottenUser> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ forgotten: boolean }>`SELECT public.tollgate_forget_user(${userId}::uuid) AS forgotten`.execute(trx);
    if (!rows[0]?.forgotten) throw new AppError('not_found', 'no such user');
    const { deleted_at } = await trx.selectFrom('user_profiles').select('deleted_at').where('id', '=', userId).executeTakeFirstOrThrow();
    return { id: userId, deletedAt: new Date(deleted_at!).toISOString() };
  });
}

/**
 * The message job: stores one user or AI message exactly once. The message id and the client's
 * (session_id, client_message_id) key are both unique, so a retried or re-sent message is absorbed.
 */
import type { Kysely } from 'kysely';
import type { MessageJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { writeFact } from './write-facts.ts';

/** Returns true when the message was stored now, false when it (or its client id) was stored before. */
export function storeMessage(db: Kysely<Database>, job: MessageJob): Promise<boolean> {
  return writeFact(db, { name: 'message', data: job });
}

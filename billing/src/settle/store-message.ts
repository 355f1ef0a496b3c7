/**
 * The message job: stores one user or AI message exactly once. The message id and the client's
 * (session_id, client_message_id) key are both unique, so a retried or re-sent message is absorbed.
 */
import type { Kysely } from 'kysely';
import type { MessageJob } from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { ensureSession } from './ensure-session.ts';

/** Returns true when the message was stored now, false when it (or its client id) was stored before. */
export async function storeMessage(db: Kysely<Database>, job: MessageJob): Promise<boolean> {
  const { message } = job;
  return db.transaction().execute(async (trx) => {
    await ensureSession(trx, job.session);
    const result = await trx
      .insertInto('messages')
      .values({
        id: message.id,
        session_id: job.session.sessionId,
        sender_type: message.senderType,
        content: message.content,
        cost_increment: message.costIncrement,
        tokens_used: message.tokensUsed,
        client_message_id: message.clientMessageId,
        created_at: message.createdAt,
        citations: message.senderType === 'ai' ? JSON.stringify(message.citations) : null,
      })
      // No conflict target: either unique key (id, or session_id + client_message_id) means "already stored".
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
  });
}

/**
 * Builders for billing tests: a user, a creator and a clone with fresh ids, and job payloads for them.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type {
  MessageJob,
  SessionHeader,
  SessionStateJob,
  SettleSessionJob,
} from '#shared/contract/billing-jobs.ts';
import type { Database } from '#shared/db/schema.ts';
import { writeFacts, type Fact } from '#billing/settle/write-facts.ts';

export interface Parties {
  userId: string;
  creatorId: string;
  cloneId: string;
}

export interface PartiesOptions {
  /** The user's credits. Default '100.0000'. */
  credits?: string;
  /** The clone's rate per minute. Default '1.5000'. */
  rate?: string;
  /** Reuse an existing creator instead of creating one. */
  creatorId?: string;
  /** Reuse an existing user instead of creating one. */
  userId?: string;
  averageRating?: string;
}

export async function createParties(db: Kysely<Database>, options: PartiesOptions = {}): Promise<Parties> {
  const creatorId = options.creatorId ?? randomUUID();
  const userId = options.userId ?? randomUUID();
  const cloneId = randomUUID();
  if (!options.creatorId) {
    await db
      .insertInto('user_profiles')
      .values({ id: creatorId, email: `creator-${creatorId}@test.local`, role: 'creator' })
      .execute();
  }
  if (!options.userId) {
    await db
      .insertInto('user_profiles')
      .values({ id: userId, email: `user-${userId}@test.local`, credits_remaining: options.credits ?? '100.0000' })
      .execute();
  }
  await db
    .insertInto('clones')
    .values({
      id: cloneId,
      creator_id: creatorId,
      name: `clone ${cloneId.slice(0, 8)}`,
      base_price: options.rate ?? '1.5000',
      is_published: true,
      average_rating: options.averageRating ?? '4.50',
    })
    .execute();
  return { userId, creatorId, cloneId };
}

export function sessionHeader(parties: Parties, overrides: Partial<SessionHeader> = {}): SessionHeader {
  return {
    sessionId: randomUUID(),
    userId: parties.userId,
    cloneId: parties.cloneId,
    type: 'chat',
    ratePerMinute: '1.5000',
    startTime: '2025-03-01T10:00:00.000Z',
    ...overrides,
  };
}

export function settleJob(session: SessionHeader, overrides: Partial<SettleSessionJob> = {}): SettleSessionJob {
  return {
    session,
    version: 5,
    endTime: '2025-03-01T10:10:00.000Z',
    reason: 'user',
    activeMs: 600_000,
    durationMinutes: 10,
    timeCost: '15.0000',
    aiCost: '0.0000',
    totalCost: '15.0000',
    messageCount: 6,
    userMessageCount: 3,
    ...overrides,
  };
}

export function stateJob(session: SessionHeader, overrides: Partial<SessionStateJob> = {}): SessionStateJob {
  return { session, status: 'active', version: 1, at: '2025-03-01T10:00:00.000Z', activeMs: 0, cost: '0.0000', messageCount: 0, reason: '', ...overrides };
}

export function messageJob(
  session: SessionHeader,
  overrides: Partial<MessageJob['message']> = {},
): MessageJob {
  return {
    session,
    message: {
      id: randomUUID(),
      senderType: 'user',
      content: 'hello',
      tokensUsed: 0,
      costIncrement: '0.0000',
      createdAt: '2025-03-01T10:01:00.000Z',
      clientMessageId: randomUUID(),
      citations: [],
      ...overrides,
    },
  };
}

/** Every row of every table, in a stable order: compare two snapshots to prove nothing changed. */
export async function snapshot(db: Kysely<Database>): Promise<Record<string, unknown[]>> {
  const tables = [
    'user_profiles',
    'clones',
    'sessions',
    'messages',
    'documents',
    'document_chunks',
    'user_analytics',
    'creator_analytics',
    'ledger_entries',
  ] as const;
  const result: Record<string, unknown[]> = {};
  for (const table of tables) {
    const rows = await db.selectFrom(table).selectAll().execute();
    result[table] = rows
      .map((row) => JSON.stringify(row))
      .sort();
  }
  return result;
}

/** One fact written alone, as the worker writes a batch: whether it wrote anything; throws the error refusing it. */
async function writeFact(db: Kysely<Database>, fact: Fact): Promise<boolean> {
  const [outcome] = await writeFacts(db, [fact]);
  if (!outcome) throw new Error('writeFacts returned no outcome');
  if ('error' in outcome) throw outcome.error;
  return outcome.written;
}

/** A session-state job applied alone: true when it moved the session to a newer status (or a later checkpoint). */
export function applySessionState(db: Kysely<Database>, job: SessionStateJob): Promise<boolean> {
  return writeFact(db, { name: 'session-state', data: job });
}

/** A message job applied alone: true when the message was stored now, false when it (or its client id) was before. */
export function storeMessage(db: Kysely<Database>, job: MessageJob): Promise<boolean> {
  return writeFact(db, { name: 'message', data: job });
}

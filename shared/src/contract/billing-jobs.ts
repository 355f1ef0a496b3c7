/**
 * The contract between the gateway (producer) and the billing worker (consumer): job names, payloads
 * (zod, validated again by the worker) and deterministic job ids. Every payload carries the session header,
 * so any job can create the `sessions` row it needs whatever order the jobs run in.
 *
 * Billing facts relayed together travel many to a job (`fact-batch`): a BullMQ job costs three Lua calls in Redis
 * whatever it carries, and the worker writes a batch's facts with a few statements. Each fact keeps the id its own job
 * would have, and the worker applies every fact idempotently, so a fact relayed twice — alone, or in two different
 * batches — counts once. Settlements are batched only with settlements, and a fact relayed alone is queued as its own
 * job (a lone settlement is `settle_<sessionId>`).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { storableText } from './storable-text.ts';

export const BILLING_QUEUE = 'billing';

const moneyString = z.string().regex(/^-?\d+\.\d{4}$/, 'a decimal with 4 places');
const isoTime = z.string().datetime({ offset: true });

export const sessionHeaderSchema = z.object({
  sessionId: z.string().uuid(),
  userId: z.string().uuid(),
  cloneId: z.string().uuid(),
  type: z.enum(['chat', 'voice', 'video']),
  ratePerMinute: moneyString,
  startTime: isoTime,
});
export type SessionHeader = z.infer<typeof sessionHeaderSchema>;

/** A state change (active/paused/ended); `version` grows with every change of one session. Also a checkpoint. */
export const sessionStateJobSchema = z.object({
  session: sessionHeaderSchema,
  status: z.enum(['active', 'paused', 'ended']),
  version: z.number().int().positive(),
  at: isoTime,
  activeMs: z.number().int().nonnegative(),
  /** What the session had cost at `at`. */
  cost: moneyString,
  messageCount: z.number().int().nonnegative(),
  /** Why it changed: user, idle, disconnected, credits_exhausted, idle_timeout, ... */
  reason: z.string().max(40).default(''),
});
export type SessionStateJob = z.infer<typeof sessionStateJobSchema>;

/**
 * The billed state of an active session at an instant, written every CHECKPOINT_MS: if its live state is lost,
 * the reconciler settles the session here, never above what the user had used.
 */
export const sessionCheckpointJobSchema = z.object({
  session: sessionHeaderSchema,
  at: isoTime,
  activeMs: z.number().int().nonnegative(),
  cost: moneyString,
  messageCount: z.number().int().nonnegative(),
});
export type SessionCheckpointJob = z.infer<typeof sessionCheckpointJobSchema>;

/** One stored message (user or AI), written once by its id. */
export const messageJobSchema = z.object({
  session: sessionHeaderSchema,
  message: z.object({
    id: z.string().uuid(),
    senderType: z.enum(['user', 'ai']),
    content: storableText(),
    tokensUsed: z.number().int().nonnegative(),
    costIncrement: moneyString,
    createdAt: isoTime,
    clientMessageId: storableText().max(64).nullable(),
    /** AI replies: the passages of the clone's documents the reply rests on. */
    citations: z.array(z.object({ documentId: z.string().uuid(), title: z.string(), chunkIndex: z.number().int().nonnegative() })).default([]),
  }),
});
export type MessageJob = z.infer<typeof messageJobSchema>;

/** The final totals of an ended session, computed by the gateway from its live state. */
export const settleSessionJobSchema = z.object({
  session: sessionHeaderSchema,
  version: z.number().int().positive(),
  endTime: isoTime,
  reason: z.string().min(1).max(40),
  activeMs: z.number().int().nonnegative(),
  durationMinutes: z.number().int().nonnegative(),
  timeCost: moneyString,
  aiCost: moneyString,
  /** What the user is charged: time cost + AI cost, capped at the credits they had. */
  totalCost: moneyString,
  messageCount: z.number().int().nonnegative(),
  userMessageCount: z.number().int().nonnegative(),
});
export type SettleSessionJob = z.infer<typeof settleSessionJobSchema>;

/** The jobs whose facts may travel together in a `fact-batch` job. */
export const BATCHED_FACT_NAMES = ['session-state', 'session-checkpoint', 'message', 'settle-session'] as const;
export type BatchedFactName = (typeof BATCHED_FACT_NAMES)[number];

/** Most facts in one `fact-batch` job (a few hundred KB of job data at most). */
export const MAX_BATCH_FACTS = 250;

/**
 * Many facts in one job. Each fact's `data` is checked against its own job's schema by the worker, one by one: a
 * fact that fails is refused alone, the others are applied.
 */
export const factBatchJobSchema = z.object({
  facts: z
    .array(
      z.object({
        name: z.enum(BATCHED_FACT_NAMES),
        /** The id the fact's own job would have (billingJobId), for logs and deduplication. */
        id: z.string().min(1).max(200),
        data: z.unknown(),
      }),
    )
    .min(1)
    .max(MAX_BATCH_FACTS),
});
export type FactBatchJob = z.infer<typeof factBatchJobSchema>;

export const billingJobSchemas = {
  'session-state': sessionStateJobSchema,
  'session-checkpoint': sessionCheckpointJobSchema,
  message: messageJobSchema,
  'settle-session': settleSessionJobSchema,
  'fact-batch': factBatchJobSchema,
} as const;

export type BillingJobName = keyof typeof billingJobSchemas;
export type BillingJobData<N extends BillingJobName> = z.infer<(typeof billingJobSchemas)[N]>;

/** Deterministic job ids: the same change always maps to the same job (BullMQ ids may not contain ':'). */
export const billingJobId = {
  sessionState: (sessionId: string, version: number) => `state_${sessionId}_${version}`,
  sessionCheckpoint: (sessionId: string, at: string) => `ckpt_${sessionId}_${Date.parse(at)}`,
  message: (messageId: string) => `msg_${messageId}`,
  settleSession: (sessionId: string) => `settle_${sessionId}`,
  /** A batch is named by its facts' ids, in any order: the same facts relayed again make the same job. */
  factBatch: (factIds: readonly string[]) =>
    `batch_${createHash('sha256').update([...factIds].sort().join('\n')).digest('hex').slice(0, 40)}`,
};

/** What the worker reports after a settlement commits (or is found already committed). */
export interface SettlementResult {
  sessionId: string;
  userId: string;
  /** false when the session had been settled before: nothing changed. */
  applied: boolean;
  /** user_profiles.credits_remaining after the settlement, and its credits_version. */
  creditsRemaining: string;
  creditsVersion: string;
  charged: string;
  creatorEarning: string;
  platformFee: string;
}

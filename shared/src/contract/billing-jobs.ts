/**
 * The contract between the gateway (producer) and the billing worker (consumer): job names, payloads
 * (zod, validated again by the worker) and deterministic job ids. Every payload carries the session header,
 * so any job can create the `sessions` row it needs whatever order the jobs run in.
 */
import { z } from 'zod';

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
    content: z.string(),
    tokensUsed: z.number().int().nonnegative(),
    costIncrement: moneyString,
    createdAt: isoTime,
    clientMessageId: z.string().max(64).nullable(),
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

export const billingJobSchemas = {
  'session-state': sessionStateJobSchema,
  'session-checkpoint': sessionCheckpointJobSchema,
  message: messageJobSchema,
  'settle-session': settleSessionJobSchema,
} as const;

export type BillingJobName = keyof typeof billingJobSchemas;
export type BillingJobData<N extends BillingJobName> = z.infer<(typeof billingJobSchemas)[N]>;

/** Deterministic job ids: the same change always maps to the same job (BullMQ ids may not contain ':'). */
export const billingJobId = {
  sessionState: (sessionId: string, version: number) => `state_${sessionId}_${version}`,
  sessionCheckpoint: (sessionId: string, at: string) => `ckpt_${sessionId}_${Date.parse(at)}`,
  message: (messageId: string) => `msg_${messageId}`,
  settleSession: (sessionId: string) => `settle_${sessionId}`,
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

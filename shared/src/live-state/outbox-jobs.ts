/**
 * Turns the billing facts the Lua scripts record in a user's outbox into billing jobs with deterministic ids
 * (`jobFromOutbox`), and an ended session's live state into its settlement (`settleJobFromLive`, for the billing
 * reconciler when the job was lost). Pure: the same entry always gives the same job, so relaying an entry twice
 * queues it once.
 */
import { formatMoney } from '#shared/money/money.ts';
import { durationMinutes } from '#shared/money/pricing.ts';
import { billingJobId, type BillingJobData, type BillingJobName, type SessionHeader } from '#shared/contract/billing-jobs.ts';
import { storedMessageOf, type OutboxEntry } from './session-store.ts';
import type { LiveSession } from './live-session.ts';

/** A billing job ready to queue, with its deterministic id. */
export interface BillingJob<N extends BillingJobName = BillingJobName> {
  name: N;
  data: BillingJobData<N>;
  jobId: string;
}

interface RawHeader {
  sessionId: string;
  userId: string;
  cloneId: string;
  type: SessionHeader['type'];
  rate: string;
  startedAt: string;
}

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();
const money = (units: string | number) => formatMoney(BigInt(units));

function header(raw: RawHeader): SessionHeader {
  return {
    sessionId: raw.sessionId,
    userId: raw.userId,
    cloneId: raw.cloneId,
    type: raw.type,
    ratePerMinute: money(raw.rate),
    startTime: iso(raw.startedAt),
  };
}

export function jobFromOutbox(entry: OutboxEntry): BillingJob {
  const raw = JSON.parse(entry.data) as Record<string, string> & { session: RawHeader; message?: Record<string, unknown> };
  const session = header(raw.session);
  switch (entry.kind) {
    case 'state':
      return {
        name: 'session-state',
        jobId: billingJobId.sessionState(session.sessionId, Number(raw.version)),
        data: {
          session,
          status: raw.status as 'active' | 'paused' | 'ended',
          version: Number(raw.version),
          at: iso(raw.at!),
          activeMs: Number(raw.activeMs),
          cost: money(raw.cost!),
          messageCount: Number(raw.messageCount),
          reason: raw.reason ?? '',
        },
      };
    case 'checkpoint': {
      const at = iso(raw.at!);
      return {
        name: 'session-checkpoint',
        jobId: billingJobId.sessionCheckpoint(session.sessionId, at),
        data: { session, at, activeMs: Number(raw.activeMs), cost: money(raw.cost!), messageCount: Number(raw.messageCount) },
      };
    }
    case 'settle':
      return settleJob(session, {
        version: Number(raw.version),
        endedAt: Number(raw.endedAt),
        reason: raw.reason ?? '',
        activeMs: Number(raw.activeMs),
        timeCost: BigInt(raw.timeCost!),
        aiCost: BigInt(raw.aiCost!),
        total: BigInt(raw.total!),
        messageCount: Number(raw.messageCount),
        userMessageCount: Number(raw.userMessageCount),
      });
    case 'message': {
      const m = storedMessageOf(raw.message!);
      return {
        name: 'message',
        jobId: billingJobId.message(m.id),
        data: {
          session,
          message: {
            id: m.id,
            senderType: m.senderType,
            content: m.content,
            tokensUsed: m.tokensUsed,
            costIncrement: formatMoney(m.costIncrement),
            createdAt: iso(m.createdAt),
            clientMessageId: m.clientMessageId,
            citations: m.citations,
          },
        },
      };
    }
    default:
      throw new Error(`unknown outbox entry kind ${String(entry.kind)}`);
  }
}

/** The final figures of an ended session, as the live state holds them. */
interface SettleFacts {
  version: number;
  endedAt: number;
  reason: string;
  activeMs: number;
  timeCost: bigint;
  aiCost: bigint;
  total: bigint;
  messageCount: number;
  userMessageCount: number;
}

function settleJob(session: SessionHeader, facts: SettleFacts): BillingJob<'settle-session'> {
  return {
    name: 'settle-session',
    jobId: billingJobId.settleSession(session.sessionId),
    data: {
      session,
      version: facts.version,
      endTime: iso(facts.endedAt),
      reason: facts.reason || 'user',
      activeMs: facts.activeMs,
      durationMinutes: durationMinutes(facts.activeMs),
      timeCost: formatMoney(facts.timeCost),
      aiCost: formatMoney(facts.aiCost),
      totalCost: formatMoney(facts.total),
      messageCount: facts.messageCount,
      userMessageCount: facts.userMessageCount,
    },
  };
}

/** The settlement job of a session that ended in the live state (for the reconciler, when the job was lost). */
export function settleJobFromLive(live: LiveSession): BillingJobData<'settle-session'> {
  if (live.status !== 'ended' || live.endedAt === null || live.total === null) {
    throw new Error(`session ${live.id} has not ended`);
  }
  const session = header({
    sessionId: live.id,
    userId: live.userId,
    cloneId: live.cloneId,
    type: live.type,
    rate: live.rate.toString(),
    startedAt: String(live.startedAt),
  });
  return settleJob(session, {
    version: live.version,
    endedAt: live.endedAt,
    reason: live.reason,
    activeMs: live.activeMs,
    timeCost: live.timeCost ?? 0n,
    aiCost: live.aiCost,
    total: live.total,
    messageCount: live.msgCount,
    userMessageCount: live.userMsgCount,
  }).data;
}

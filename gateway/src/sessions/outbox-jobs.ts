/**
 * Turns the billing facts the Lua scripts record in a user's outbox into billing jobs with deterministic ids.
 * Pure: the same entry always gives the same job, so relaying an entry twice queues it once.
 */
import { formatMoney } from '#shared/money/money.ts';
import { durationMinutes } from '#shared/money/pricing.ts';
import { billingJobId, type BillingJobData, type BillingJobName, type SessionHeader } from '#shared/contract/billing-jobs.ts';
import type { OutboxEntry } from './session-store.ts';

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
      return {
        name: 'settle-session',
        jobId: billingJobId.settleSession(session.sessionId),
        data: {
          session,
          version: Number(raw.version),
          endTime: iso(raw.endedAt!),
          reason: raw.reason || 'user',
          activeMs: Number(raw.activeMs),
          durationMinutes: durationMinutes(Number(raw.activeMs)),
          timeCost: money(raw.timeCost!),
          aiCost: money(raw.aiCost!),
          totalCost: money(raw.total!),
          messageCount: Number(raw.messageCount),
          userMessageCount: Number(raw.userMessageCount),
        },
      };
    case 'message': {
      const m = raw.message!;
      return {
        name: 'message',
        jobId: billingJobId.message(String(m.id)),
        data: {
          session,
          message: {
            id: String(m.id),
            senderType: m.senderType === 'ai' ? 'ai' : 'user',
            content: String(m.content),
            tokensUsed: Number(m.tokensUsed),
            costIncrement: money(String(m.costIncrement)),
            createdAt: iso(String(m.createdAt)),
            clientMessageId: typeof m.clientMessageId === 'string' ? m.clientMessageId : null,
          },
        },
      };
    }
    default:
      throw new Error(`unknown outbox entry kind ${String(entry.kind)}`);
  }
}

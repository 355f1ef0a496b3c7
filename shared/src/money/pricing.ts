/**
 * The pricing rules, as pure functions: time cost from active milliseconds, AI reply cost from tokens,
 * and the split of a session total into creator earning and platform fee.
 */
import { applyRatio, divideHalfUp, type Ratio, type Units } from './money.ts';

const MS_PER_MINUTE = 60_000n;

/** rate_per_minute × activeMs / 60000, rounded half-up — always from the total, never summed from ticks. */
export function timeCost(ratePerMinute: Units, activeMs: number | bigint): Units {
  return divideHalfUp(ratePerMinute * BigInt(activeMs), MS_PER_MINUTE);
}

/** Active minutes rounded up (sessions.duration_minutes). */
export function durationMinutes(activeMs: number | bigint): number {
  const ms = BigInt(activeMs);
  return Number((ms + MS_PER_MINUTE - 1n) / MS_PER_MINUTE);
}

/** tokens_used × price per 1000 tokens / 1000, rounded half-up. */
export function replyCost(tokensUsed: number, pricePer1kTokens: Units): Units {
  return divideHalfUp(BigInt(tokensUsed) * pricePer1kTokens, 1000n);
}

export interface Split {
  readonly total: Units;
  readonly platformFee: Units;
  readonly creatorEarning: Units;
}

/** fee = total × rate rounded half-up; earning = total − fee, so the two always add up to the total. */
export function splitTotal(total: Units, platformFeeRate: Ratio): Split {
  const platformFee = applyRatio(total, platformFeeRate);
  return { total, platformFee, creatorEarning: total - platformFee };
}

/** A per-minute rate after a subscription's discount (a ratio 0..1): the discount rounded half-up to a unit. */
export function discountedRate(ratePerMinute: Units, discount: Ratio | undefined): Units {
  return discount ? ratePerMinute - applyRatio(ratePerMinute, discount) : ratePerMinute;
}

/**
 * What a refund or a dispute of a credit purchase takes back, exactly (units of 0.0001 credit, cash in minor units).
 * The credits a reversal covers are the purchase's credits in proportion to the cash reversed, counted on the total
 * reversed so far (`floor(credits × reversedSoFar / amount)` minus the same of what was reversed before), so partial
 * refunds that end up refunding everything take back exactly the credits sold, never a unit more or less. Of those,
 * the user gives back what they have not spent — never below zero — and the rest, already spent, is the platform's
 * loss, recorded rather than dropped.
 */
export interface PurchaseAmounts {
  /** Credits the purchase granted (units). */
  credits: bigint;
  /** What was paid (minor units). */
  amountMinor: bigint;
}

export interface ReversalSplit {
  /** Cash newly reversed (minor units). */
  reversedMinor: bigint;
  /** The credits that cash bought (units): what the cash account gives back. */
  credits: bigint;
  /** Taken from the user's balance (units, ≤ their credits). */
  takenBack: bigint;
  /** Already spent: the platform's loss (units). */
  loss: bigint;
}

/** The credits bought by `reversedMinor` of the purchase's cash. */
function creditsFor(purchase: PurchaseAmounts, reversedMinor: bigint): bigint {
  return (purchase.credits * reversedMinor) / purchase.amountMinor;
}

/**
 * The split of a reversal that brings the purchase's reversed cash from `beforeMinor` to `totalMinor` (capped at
 * what was paid), with the user holding `userCredits` now.
 */
export function reversalSplit(purchase: PurchaseAmounts, beforeMinor: bigint, totalMinor: bigint, userCredits: bigint): ReversalSplit {
  const total = totalMinor > purchase.amountMinor ? purchase.amountMinor : totalMinor;
  if (total <= beforeMinor) return { reversedMinor: 0n, credits: 0n, takenBack: 0n, loss: 0n };
  const credits = creditsFor(purchase, total) - creditsFor(purchase, beforeMinor);
  const available = userCredits > 0n ? userCredits : 0n;
  const takenBack = credits < available ? credits : available;
  return { reversedMinor: total - beforeMinor, credits, takenBack, loss: credits - takenBack };
}

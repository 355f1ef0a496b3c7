/**
 * Exact money arithmetic. An amount is a bigint count of 0.0001 credits ("units"),
 * matching Postgres `numeric(14,4)`. Decimal strings at the edges, bigints inside, never floats.
 */

export type Units = bigint;

/** Decimal places of every money value (numeric(14,4)). */
const SCALE = 4;
const UNITS_PER_CREDIT = 10_000n;

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * Parses a decimal string ("1.25", "-0.0001", "3") into units.
 * More than four decimals are rounded half-up (away from zero), as Postgres rounds numeric(14,4).
 */
export function parseMoney(text: string): Units {
  const match = DECIMAL.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = ''] = match;
  const kept = fraction.slice(0, SCALE).padEnd(SCALE, '0');
  let units = BigInt(whole!) * UNITS_PER_CREDIT + BigInt(kept);
  const next = fraction.charCodeAt(SCALE);
  if (!Number.isNaN(next) && next >= 53 /* '5' */) units += 1n;
  return sign ? -units : units;
}

/** Formats units as a decimal string with exactly four decimals ("1.2500"). */
export function formatMoney(units: Units): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / UNITS_PER_CREDIT;
  const fraction = (abs % UNITS_PER_CREDIT).toString().padStart(SCALE, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/** Divides with rounding half-up (half away from zero) — the one rounding rule for money. */
export function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) throw new RangeError('division by zero');
  if (denominator < 0n) return divideHalfUp(-numerator, -denominator);
  const negative = numerator < 0n;
  const abs = negative ? -numerator : numerator;
  const rounded = (abs * 2n + denominator) / (denominator * 2n);
  return negative ? -rounded : rounded;
}

/** An exact decimal ratio such as a fee rate "0.20", kept as numerator/denominator. */
export interface Ratio {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/** Parses a non-negative decimal string ("0.2", "0.175") into an exact ratio. */
export function parseRatio(text: string): Ratio {
  const match = DECIMAL.exec(text.trim());
  if (!match || match[1]) throw new RangeError(`not a non-negative decimal: ${JSON.stringify(text)}`);
  const [, , whole, fraction = ''] = match;
  const denominator = 10n ** BigInt(fraction.length);
  return { numerator: BigInt(whole!) * denominator + BigInt(fraction || '0'), denominator };
}

/** amount × ratio, rounded half-up to a unit. */
export function applyRatio(amount: Units, ratio: Ratio): Units {
  return divideHalfUp(amount * ratio.numerator, ratio.denominator);
}

export function minUnits(a: Units, b: Units): Units {
  return a < b ? a : b;
}

export function maxUnits(a: Units, b: Units): Units {
  return a > b ? a : b;
}

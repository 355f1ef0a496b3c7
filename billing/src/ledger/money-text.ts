/**
 * Money read from Postgres (numeric text such as "15", "0.5", "-3.0001") as the API's decimal string with exactly
 * four places. Goes through the bigint units, never a float.
 */
import { formatMoney, parseMoney } from '#shared/money/money.ts';

export function moneyText(value: string | null | undefined): string {
  return formatMoney(parseMoney(value ?? '0'));
}

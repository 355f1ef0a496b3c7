import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { applyRatio, divideHalfUp, formatMoney, parseMoney, parseRatio } from '#shared/money/money.ts';
import { durationMinutes, replyCost, splitTotal, timeCost } from '#shared/money/pricing.ts';

test('parseMoney and formatMoney round-trip four decimals', () => {
  assert.is(parseMoney('1.25'), 12_500n);
  assert.is(parseMoney('0.0001'), 1n);
  assert.is(parseMoney('-3'), -30_000n);
  assert.is(formatMoney(12_500n), '1.2500');
  assert.is(formatMoney(-1n), '-0.0001');
  assert.is(formatMoney(0n), '0.0000');
  assert.is(formatMoney(parseMoney('123456789.9999')), '123456789.9999');
});

test('parseMoney rounds a fifth decimal half-up, away from zero', () => {
  assert.is(parseMoney('0.00005'), 1n);
  assert.is(parseMoney('0.00004999'), 0n);
  assert.is(parseMoney('-0.00005'), -1n);
  assert.is(parseMoney('1.99995'), 20_000n);
});

test('parseMoney rejects what is not a decimal', () => {
  for (const bad of ['', 'abc', '1e3', '1.2.3', '0x10', ' . ', 'NaN']) {
    assert.throws(() => parseMoney(bad), RangeError, bad);
  }
});

test('divideHalfUp rounds halves away from zero', () => {
  assert.is(divideHalfUp(5n, 10n), 1n);
  assert.is(divideHalfUp(4n, 10n), 0n);
  assert.is(divideHalfUp(15n, 10n), 2n);
  assert.is(divideHalfUp(-5n, 10n), -1n);
  assert.is(divideHalfUp(-4n, 10n), 0n);
  assert.throws(() => divideHalfUp(1n, 0n));
});

test('time cost at rounding edges: computed from the total, half-up', () => {
  const rate = parseMoney('1.0000'); // 10000 units a minute: 1 unit per 6 ms
  assert.is(timeCost(rate, 0), 0n);
  assert.is(timeCost(rate, 2), 0n); // 0.333 unit
  assert.is(timeCost(rate, 3), 1n); // exactly half a unit rounds up
  assert.is(timeCost(rate, 6), 1n);
  assert.is(timeCost(rate, 60_000), 10_000n);
  assert.is(timeCost(parseMoney('0.0001'), 29_999), 0n);
  assert.is(timeCost(parseMoney('0.0001'), 30_000), 1n);
  // summing per-tick costs would drift; the total does not
  const perTick = Array.from({ length: 1000 }, () => timeCost(rate, 2)).reduce((a, b) => a + b, 0n);
  assert.is(perTick, 0n);
  assert.is(timeCost(rate, 2000), 333n);
});

test('duration minutes round up active time', () => {
  assert.is(durationMinutes(0), 0);
  assert.is(durationMinutes(1), 1);
  assert.is(durationMinutes(60_000), 1);
  assert.is(durationMinutes(60_001), 2);
});

test('reply cost: tokens × price per 1000, half-up', () => {
  assert.is(replyCost(50, parseMoney('0.5000')), 250n);
  assert.is(replyCost(1, parseMoney('0.0005')), 0n);
  assert.is(replyCost(1, parseMoney('0.5000')), 5n);
  assert.is(replyCost(0, parseMoney('9.0000')), 0n);
});

test('the fee is rounded half-up and the earning takes the rest', () => {
  const rate = parseRatio('0.20');
  assert.equal(splitTotal(3n, rate), { total: 3n, platformFee: 1n, creatorEarning: 2n }); // 0.6 → 1
  assert.equal(splitTotal(2n, rate), { total: 2n, platformFee: 0n, creatorEarning: 2n }); // 0.4 → 0
  assert.equal(splitTotal(25n, rate), { total: 25n, platformFee: 5n, creatorEarning: 20n });
  assert.equal(splitTotal(0n, rate), { total: 0n, platformFee: 0n, creatorEarning: 0n });
  assert.is(applyRatio(5n, parseRatio('0.1')), 1n); // 0.5 → 1
});

test('property: every split balances and the fee stays within the total', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 14n }),
      fc.integer({ min: 0, max: 10_000 }),
      (total, basisPoints) => {
        const rate = parseRatio((basisPoints / 10_000).toFixed(4));
        const split = splitTotal(total, rate);
        return split.platformFee + split.creatorEarning === total && split.platformFee >= 0n && split.platformFee <= total;
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: formatMoney and parseMoney are inverse', () => {
  fc.assert(fc.property(fc.bigInt({ min: -(10n ** 14n), max: 10n ** 14n }), (units) => parseMoney(formatMoney(units)) === units));
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import fc from 'fast-check';
import { timeCost } from '#shared/money/pricing.ts';

// The Lua meter keeps money in doubles; it must agree with the bigint rules for every realistic rate and duration.
const include = readFileSync(new URL('../../shared/src/live-state/lua/includes/live-state.lua', import.meta.url), 'utf8');
const evaluate = `${include}
local out = {}
for i = 4, #ARGV, 2 do out[#out + 1] = n2s(timeCost(tonumber(ARGV[i]), tonumber(ARGV[i + 1]))) end
return out`;

let redis: Redis;
test.before(() => {
  redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
});
test.after(async () => {
  await redis.quit();
});

async function luaTimeCosts(pairs: Array<[bigint, number]>): Promise<bigint[]> {
  const args = pairs.flatMap(([rate, ms]) => [rate.toString(), String(ms)]);
  const out = (await redis.eval(evaluate, 5, 'k1', 'k2', 'k3', 'k4', 'k5', 'base:', '{}', '', ...args)) as string[];
  return out.map((v) => BigInt(v));
}

test('Lua time cost equals the bigint rule at rounding edges', async () => {
  const pairs: Array<[bigint, number]> = [
    [10_000n, 3], [10_000n, 2], [1n, 30_000], [1n, 29_999], [0n, 123], [999_999_999n, 59_999], [60_000n, 1],
  ];
  const lua = await luaTimeCosts(pairs);
  assert.equal(lua, pairs.map(([rate, ms]) => timeCost(rate, ms)));
});

test('property: Lua and TypeScript meters agree (rates up to 100000/min, up to 30 days)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 1_000_000_000n }), fc.integer({ min: 0, max: 30 * 86_400_000 })), { minLength: 1, maxLength: 200 }),
      async (pairs) => {
        const lua = await luaTimeCosts(pairs);
        return lua.every((cost, i) => cost === timeCost(pairs[i]![0], pairs[i]![1]));
      },
    ),
    { numRuns: 200 },
  );
});

test.run();

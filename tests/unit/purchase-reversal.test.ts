import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { reversalSplit } from '#billing/payments/purchase-reversal.ts';

const pack = { credits: 2_200_000n, amountMinor: 2000n }; // 220.0000 credits for 20.00

test('a full refund of an unspent purchase takes every credit back; nothing is lost', () => {
  assert.equal(reversalSplit(pack, 0n, 2000n, 5_000_000n), { reversedMinor: 2000n, credits: 2_200_000n, takenBack: 2_200_000n, loss: 0n });
});

test('credits already spent are the platform\'s loss, and a balance never goes below zero', () => {
  assert.equal(reversalSplit(pack, 0n, 2000n, 600_000n), { reversedMinor: 2000n, credits: 2_200_000n, takenBack: 600_000n, loss: 1_600_000n });
  assert.equal(reversalSplit(pack, 0n, 2000n, 0n), { reversedMinor: 2000n, credits: 2_200_000n, takenBack: 0n, loss: 2_200_000n });
  assert.equal(reversalSplit(pack, 0n, 2000n, -5n).takenBack, 0n);
});

test('a repeated or smaller cumulative amount reverses nothing; more than was paid is capped', () => {
  assert.equal(reversalSplit(pack, 1000n, 1000n, 9_000_000n).credits, 0n);
  assert.equal(reversalSplit(pack, 1500n, 1000n, 9_000_000n).reversedMinor, 0n);
  assert.equal(reversalSplit(pack, 0n, 99_999n, 9_000_000n).reversedMinor, 2000n);
});

test('partial refunds in any steps add up to exactly the credits sold, and every split balances', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 10_000_000_000n }),
      fc.bigInt({ min: 1n, max: 1_000_000n }),
      fc.array(fc.bigInt({ min: 0n, max: 1_000_000n }), { maxLength: 8 }),
      fc.bigInt({ min: 0n, max: 20_000_000_000n }),
      (credits, amountMinor, cuts, balance) => {
        const purchase = { credits, amountMinor };
        const steps = [...cuts.map((c) => c % (amountMinor + 1n)), amountMinor].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        let before = 0n;
        let user = balance;
        let reversedCredits = 0n;
        for (const total of steps) {
          const split = reversalSplit(purchase, before, total, user);
          assert.is(split.takenBack + split.loss, split.credits);
          assert.ok(split.takenBack >= 0n && split.loss >= 0n && split.takenBack <= (user > 0n ? user : 0n));
          user -= split.takenBack;
          reversedCredits += split.credits;
          if (total > before) before = total;
        }
        assert.is(reversedCredits, credits);
      },
    ),
  );
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { invalidStateCauses } from '../../scripts/chaos/simulated-users.ts';

// The chaos run's check "no invalid_state the user did not cause" rests on this sorting of its counts.
test('invalid_state answers sorted by cause; a state the user could not have known of is not the user\'s doing', () => {
  const counts = new Map([
    ['invalid_state', 999], // the total, not a cause
    ['insufficient_credits', 7],
    ['invalid_state message:send ended/idle_timeout (retry)', 5],
    ['invalid_state message:send paused/user (retry)', 2],
    ['invalid_state session:end ended/user (finishing)', 3],
    ['invalid_state message:send ended/credits_exhausted', 4],
    ['invalid_state session:resume ended/idle_timeout', 1],
    ['invalid_state session:pause ended/user', 6],
    ['invalid_state message:send paused/disconnected', 8],
    ['invalid_state session:resume active/', 9],
  ]);
  assert.equal(Object.fromEntries(invalidStateCauses(counts)), {
    'retry after the session changed': 7,
    finishing: 3,
    'ended by a rule meanwhile': 5,
    "the user's own pause or end": 6,
    "not the user's doing": 17,
  });
});

test.run();

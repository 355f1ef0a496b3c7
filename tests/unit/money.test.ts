import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatMoney, parseMoney } from '#shared/money/money.ts';

test('parses and formats', () => {
  assert.is(formatMoney(parseMoney('1.25')), '1.2500');
});
test.run();

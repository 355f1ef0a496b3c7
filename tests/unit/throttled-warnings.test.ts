import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';

// A dependency that stops answering refuses every request: the log gets the first refusal of each kind at once, then
// one line per interval saying how many were left out — not a line per request.
function recorded() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: 'warn' }, sink) };
}

test('the first warning of a kind is logged, repeats within the interval are counted and reported with the next line', async () => {
  const { lines, logger } = recorded();
  let now = 1_000_000;
  const warnings = new ThrottledWarnings(logger, 10_000, () => now);
  warnings.warn('unavailable:message:send', { event: 'message:send' }, 'event refused');
  for (let i = 0; i < 2_500; i++) {
    now += 2;
    warnings.warn('unavailable:message:send', { event: 'message:send' }, 'event refused');
  }
  // another kind is not held back by the first
  warnings.warn('unavailable:session:start', { event: 'session:start' }, 'event refused');
  now = 1_000_000 + 10_000;
  warnings.warn('unavailable:message:send', { event: 'message:send' }, 'event refused');
  await new Promise((resolve) => setImmediate(resolve));
  // 2,500 repeats 2 ms apart all fall within the first 10 s: counted, reported with the line at 10 s
  assert.equal(
    lines.map((line) => [line.kind, line.suppressed, line.event, line.level]),
    [
      ['unavailable:message:send', undefined, 'message:send', 40],
      ['unavailable:session:start', undefined, 'session:start', 40],
      ['unavailable:message:send', 2_500, 'message:send', 40],
    ],
  );
  // the count starts again after a line
  now += 1;
  warnings.warn('unavailable:message:send', { event: 'message:send' }, 'event refused');
  now += 10_000;
  warnings.warn('unavailable:message:send', { event: 'message:send' }, 'event refused');
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(lines.at(-1)!.suppressed, 1);
});

test.run();

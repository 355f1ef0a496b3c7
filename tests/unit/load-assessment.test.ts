import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assessLoad, INITIAL_LOAD_STATE, type LoadLimits } from '#gateway/admission/load-assessment.ts';

const limits: LoadLimits = { eventLoopDelayMs: 100, repliesWaiting: 10, redisLatencyMs: 200 };
const calm = { eventLoopDelayMs: 5, repliesWaiting: 0, redisLatencyMs: 1 };

test('one signal over its limit is enough, and says which', () => {
  const state = assessLoad(INITIAL_LOAD_STATE, { ...calm, redisLatencyMs: 250 }, limits, 1000, 10_000);
  assert.equal(state, { overloaded: true, reasons: ['redisLatencyMs>200'], calmSince: null });
  const both = assessLoad(state, { ...calm, eventLoopDelayMs: 101, repliesWaiting: 11 }, limits, 1000, 10_500);
  assert.equal(both.reasons, ['eventLoopDelayMs>100', 'repliesWaiting>10']);
});

test('a signal at its limit is not over it, and a limit of 0 is off', () => {
  assert.is(assessLoad(INITIAL_LOAD_STATE, { eventLoopDelayMs: 100, repliesWaiting: 10, redisLatencyMs: 200 }, limits, 1000, 0).overloaded, false);
  assert.is(assessLoad(INITIAL_LOAD_STATE, { ...calm, repliesWaiting: 1e9 }, { ...limits, repliesWaiting: 0 }, 1000, 0).overloaded, false);
});

test('once overloaded, work is taken again only after every signal stayed calm for calmMs', () => {
  let state = assessLoad(INITIAL_LOAD_STATE, { ...calm, eventLoopDelayMs: 500 }, limits, 1000, 0);
  state = assessLoad(state, calm, limits, 1000, 500);
  assert.equal(state, { overloaded: true, reasons: [], calmSince: 500 });
  state = assessLoad(state, calm, limits, 1000, 1400);
  assert.is(state.overloaded, true, 'calm for 900 ms only');
  // a relapse restarts the count
  state = assessLoad(state, { ...calm, repliesWaiting: 50 }, limits, 1000, 1450);
  state = assessLoad(state, calm, limits, 1000, 1500);
  state = assessLoad(state, calm, limits, 1000, 2400);
  assert.is(state.overloaded, true, 'calm for 900 ms since the relapse');
  state = assessLoad(state, calm, limits, 1000, 2500);
  assert.is(state.overloaded, false);
  assert.is(assessLoad(state, calm, limits, 1000, 2600).overloaded, false, 'stays served');
});

test.run();

--[[
  Brings a user's live state up to now: applies every due event (idle pause, paused timeout, credit exhaustion)
  at its exact instant. Used by the due-event scheduler and the meter ticks.
  KEYS: the common three.  ARGV: the common four.
  Returns the common JSON.
]]
--@include live-state
local now = nowMs()
local nextDue = advance(now)
return reply(CODE_OK, now, nextDue)

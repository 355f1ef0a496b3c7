--[[
  Brings a user's live state up to now: applies every due event at its exact instant and writes due checkpoints.
  Used by the due-event scheduler (gateway id '') and by the meter ticks of a gateway holding the user's sockets.
  KEYS: the common five.  ARGV: the common three.
  Returns the common JSON.
]]
--@include live-state
local now = begin()
return reply(CODE_OK, now, advance(now))

--[[
  A heartbeat from gateway ARGV[1], which still holds a socket of the user: moves its sighting to now. It only
  continues a sighting this gateway already recorded (arrivals go through the live-state scripts, which pause what
  a gap left behind) and only while that sighting is fresh: after a longer silence the meter judges the gap and
  pauses the user's chats at the last sighting.
  KEYS: 1 presence hash.  ARGV: 1 gateway id, 2 presence timeout in ms.
  Returns 1 when refreshed, 0 when left to the meter.
]]
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if not seen then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(seen) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now))
return 1

--[[
  Notes that something is due for a user at an instant. It replaces the user's entry when there is none, when the
  new instant is earlier, or when the entry is already past: whoever wrote this instant has just applied everything
  due up to now (every live-state script advances first), so a past entry says nothing this one does not.
  KEYS: 1 the due sorted set.  ARGV: 1 userId, 2 the due instant (ms).
  Returns 1 when it changed the entry, 0 when an earlier future instant was kept.
]]
local at = tonumber(ARGV[2])
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local score = tonumber(current)
  if score <= at and score > now then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1

--[[
  Replaces a user's due instant after it was handled, unless someone scheduled an earlier one meanwhile.
  KEYS: 1 the due sorted set.  ARGV: 1 userId, 2 the score that was handled, 3 the next due instant or '' for none.
  Returns 1 when it changed the entry, 0 when a newer schedule was left alone.
]]
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1

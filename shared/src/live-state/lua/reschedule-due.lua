--[[
  Replaces a user's due instant after a gateway handled it, and ends that gateway's lease. If the entry changed
  meanwhile (a user action scheduled a fresher instant), the handler's answer may be stale: it only ever moves the
  entry earlier then.
  KEYS: 1 the due sorted set, 2 the lease sorted set.
  ARGV: 1 userId, 2 the score that was handled, 3 the next due instant or '' for none.
  Returns 1 when it changed the entry, 0 when it left it alone.
]]
redis.call('ZREM', KEYS[2], ARGV[1])
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) ~= tonumber(ARGV[2]) then
  if ARGV[3] == '' then return 0 end
  return redis.call('ZADD', KEYS[1], 'LT', 'CH', ARGV[3], ARGV[1])
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1

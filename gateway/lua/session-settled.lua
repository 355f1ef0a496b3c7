--[[
  The billing worker settled a session in Postgres: forget its unsettled total and take the newer balance.
  KEYS: common three.  ARGV: common four, 5 sessionId, 6 credits (units) after settling, 7 creditsVersion.
  Returns the common JSON. It applies nothing due, so it makes no state change its caller (the billing worker)
  would have to queue; the user's next due instant is left to the scheduler and the meter ticks.
]]
--@include live-state
local id, credits, version = ARGV[5], ARGV[6], tonumber(ARGV[7])
local now = nowMs()
local known = tonumber(redis.call('HGET', accountKey, 'creditsVersion') or '-1')
-- A stored version at or after this one was read after this settlement committed: it already holds the debit.
if version > known then
  redis.call('HSET', accountKey, 'credits', credits, 'creditsVersion', n2s(version))
end
redis.call('HDEL', unsettledKey, id)
return reply(CODE_OK, now, nil)

--[[
  Takes a Postgres balance snapshot into the live state: credits_remaining at credits_version, and the unsettled
  sessions that snapshot already includes (settled at a credits_version <= it), whose totals are dropped here so
  they are never subtracted twice. An older snapshot than the one held does not replace it, but the sessions it
  includes are included in the newer one too, so they are dropped all the same.
  KEYS: common three.  ARGV: common four, 5 credits (units), 6 creditsVersion, 7.. ids of included sessions.
  Returns the common JSON. It applies nothing due, so it makes no state change its caller would have to queue.
]]
--@include live-state
local credits, version = ARGV[5], tonumber(ARGV[6])
local now = nowMs()
local known = tonumber(redis.call('HGET', accountKey, 'creditsVersion') or '-1')
if version > known then
  redis.call('HSET', accountKey, 'credits', credits, 'creditsVersion', n2s(version))
end
for i = 7, #ARGV do redis.call('HDEL', unsettledKey, ARGV[i]) end
return reply(CODE_OK, now, nil)

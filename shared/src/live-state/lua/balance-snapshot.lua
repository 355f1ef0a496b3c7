--[[
  Takes a Postgres balance snapshot into the live state: credits_remaining at credits_version, and the unsettled
  sessions that snapshot already includes (settled at a credits_version <= it), whose totals are dropped here so
  they are never subtracted twice. An older snapshot than the one held does not replace it, but the sessions it
  includes are included in the newer one too, so they are dropped all the same.
  KEYS: common five.  ARGV: common three, 4 credits (units), 5 creditsVersion, 6.. ids of included sessions.
  Returns the common JSON. It applies nothing due, so it makes no state change its caller would have to relay.
]]
startRun(KEYS, ARGV)
local credits, version = ARGV[4], tonumber(ARGV[5])
local now = nowMs()
local known = tonumber(redis.call('HGET', accountKey, 'creditsVersion') or '-1')
if version > known then
  redis.call('HSET', accountKey, 'credits', credits, 'creditsVersion', n2s(version))
  markChanged()
end
for i = 6, #ARGV do
  if redis.call('HDEL', unsettledKey, ARGV[i]) == 1 then markChanged() end
end
budgetValue = nil
-- a new balance may bring credit exhaustion nearer: the next script advances in full
redis.call('HDEL', accountKey, 'dueAt', 'eventDue')
eventDueKnown, eventDueValue = false, nil
return reply(CODE_OK, now, nil)

--[[
  Opens a session if the user can pay for its first minutes.
  KEYS: common three, 4 the new session's hash.
  ARGV: common four, 5 sessionId, 6 userId, 7 cloneId, 8 type, 9 rate (units/min),
        10 credits (units, Postgres snapshot), 11 creditsVersion, 12 minimum start ms.
  Returns the common JSON; code 3 when available credits do not cover the minimum start time.
]]
--@include live-state
local id, userId, cloneId, kind = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local rate, credits, version, minStartMs = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])

-- A newer Postgres balance replaces the older one; settlements since then are already in it.
local known = tonumber(redis.call('HGET', accountKey, 'creditsVersion') or '-1')
if version > known then
  redis.call('HSET', accountKey, 'credits', credits, 'creditsVersion', n2s(version))
end

local now = nowMs()
advance(now)
if redis.call('EXISTS', KEYS[4]) == 1 then
  return reply(CODE_DUPLICATE, now, advance(now), { sessionId = id })
end
local available = budget() - totalAt(openSessions(), now)
if available <= 0 or available < timeCost(rate, minStartMs) then
  return reply(CODE_INSUFFICIENT, now, advance(now), { available = n2s(available) })
end
redis.call('HSET', KEYS[4],
  'id', id, 'userId', userId, 'cloneId', cloneId, 'type', kind, 'status', 'active', 'rate', n2s(rate),
  'startedAt', n2s(now), 'resumedAt', n2s(now), 'lastUserAt', n2s(now), 'pausedAt', '', 'endedAt', '',
  'activeMs', '0', 'aiCost', '0', 'msgCount', '0', 'userMsgCount', '0', 'version', '1', 'cap', '',
  'reason', '', 'lowSent', '0', 'timeCost', '', 'total', '')
redis.call('SADD', openKey, id)
touched[id] = true
changes[#changes + 1] = { sessionId = id, status = 'active', version = 1, at = n2s(now), reason = '', activeMs = '0' }
return reply(CODE_OK, now, advance(now), { sessionId = id })

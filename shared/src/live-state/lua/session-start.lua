--[[
  Opens a session if the user can pay for its first minutes (the balance is refreshed before: balance-snapshot.lua).
  A chat starts active. A voice or video session starts paused: it is metered only while the user is in its room
  (room-event.lua), and ends with nothing charged if the user does not join by JOIN_TIMEOUT_MS.
  KEYS: common five, 6 the new session's hash.
  ARGV: common three, 4 sessionId, 5 userId, 6 cloneId, 7 type, 8 rate (units/min), 9 minimum start ms,
        10 most open sessions a user may have.
  Returns the common JSON; code 3 when available credits do not cover the minimum start time, 5 when the user
  already has the most open sessions allowed.
]]
startRun(KEYS, ARGV)
local id, userId, cloneId, kind = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local rate, minStartMs, maxOpen = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

local now = begin()
if redis.call('EXISTS', KEYS[6]) == 1 then
  return reply(CODE_DUPLICATE, now, advance(now), { sessionId = id })
end
local open = openSessions()
if #open >= maxOpen then
  return reply(CODE_TOO_MANY, now, advance(now), { open = #open })
end
local available = budget() - totalAt(open, now)
if available <= 0 or available < timeCost(rate, minStartMs) then
  return reply(CODE_INSUFFICIENT, now, advance(now), { available = n2s(available) })
end
local inRoom = kind ~= 'chat'
local status = inRoom and 'paused' or 'active'
redis.call('HSET', KEYS[6],
  'id', id, 'userId', userId, 'cloneId', cloneId, 'type', kind, 'status', status, 'rate', n2s(rate),
  'startedAt', n2s(now), 'resumedAt', n2s(now), 'lastUserAt', n2s(now), 'pausedAt', inRoom and n2s(now) or '',
  'endedAt', '', 'activeMs', '0', 'aiCost', '0', 'msgCount', '0', 'userMsgCount', '0', 'version', '1', 'cap', '',
  'reason', inRoom and 'waiting_for_join' or '', 'lowSent', '0', 'timeCost', '', 'total', '', 'checkpointAt', n2s(now),
  'joinBy', inRoom and n2s(now + JOIN_TIMEOUT_MS) or '', 'held', '0', 'roomIn', '[]', 'roomGone', '[]')
addOpen(id)
local s = loadSession(id)
touched[id] = true
changes[#changes + 1] = { sessionId = id, status = status, version = 1, at = n2s(now), reason = '', activeMs = '0' }
record('state', {
  session = header(s), status = status, version = '1', at = n2s(now), activeMs = '0', cost = '0', messageCount = '0',
  reason = 'user',
})
return reply(CODE_OK, now, advance(now), { sessionId = id })

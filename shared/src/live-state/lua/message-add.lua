--[[
  Stores a user message once per clientMessageId while the session is active; a repeat returns the first one.
  KEYS: common five, 6 session hash, 7 message log, 8 clientMessageId → message, 9 messageId → message.
  ARGV: common three, 4 sessionId, 5 clientMessageId, 6 new messageId, 7 content.
  A chat paused `disconnected` is resumed first when the message comes through a gateway (the user is back).
  Returns the common JSON with result = { message = JSON string of the stored message }; code 4 for a repeat,
  2 with result = { status, reason } when the session is not active,
  6 when the user already sent MESSAGE_RATE_PER_MIN new messages this minute (counted here, so across gateways,
  and only for messages accepted: repeats and refusals are free).
]]
startRun(KEYS, ARGV)
local id, clientMessageId, messageId, content = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local now = begin()
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
local existing = redis.call('HGET', KEYS[8], clientMessageId)
if existing then
  return reply(CODE_DUPLICATE, now, advance(now), { message = existing })
end
-- A chat paused because no gateway saw the user's sockets goes on when a message comes from one of them: the user is
-- back (a gateway died, a connection dropped, a busy gateway's sighting ran late). The time between was not charged.
if s.status == 'paused' and s.type == 'chat' and s.pausedBy == 'disconnected' and gatewayId ~= '' then
  if budget() - totalAt(openSessions(), now) <= 0 then return reply(CODE_INSUFFICIENT, now, advance(now)) end
  transition(s, 'active', now, 'returned')
end
if s.status ~= 'active' then
  return reply(CODE_INVALID_STATE, now, advance(now), { status = s.status, reason = statusReason(s) })
end
-- the layout of UserKeys.messageRate (shared/src/live-state/keys.ts): the minute is only known here, from Redis time
local rateKey = keyBase .. 'msgrate:' .. n2s(math.floor(now / 60000))
if tonumber(redis.call('GET', rateKey) or '0') >= MESSAGE_RATE_PER_MIN then
  return reply(CODE_MESSAGE_RATE, now, advance(now), { limit = MESSAGE_RATE_PER_MIN })
end
redis.call('INCR', rateKey)
redis.call('PEXPIRE', rateKey, 120000)
local fields = {
  id = messageId, sessionId = id, senderType = 'user', content = content, tokensUsed = 0,
  costIncrement = '0', createdAt = n2s(now), clientMessageId = clientMessageId,
}
local message = cjson.encode(fields)
redis.call('RPUSH', KEYS[7], message)
redis.call('HSET', KEYS[8], clientMessageId, message)
redis.call('HSET', KEYS[9], messageId, message)
save(s, {
  msgCount = n2s(tonumber(s.msgCount) + 1),
  userMsgCount = n2s(tonumber(s.userMsgCount) + 1),
  lastUserAt = n2s(now),
})
record('message', { session = header(s), message = fields })
-- a user message only moves the idle instant later: the due instant stored by the last advance still holds (never
-- later than the truth), so unless the run's start changed something the closing advance is skipped
local due = #changes == 0 and storedDue() or nil
if due == math.huge then return reply(CODE_OK, now, nil, { message = message }) end
return reply(CODE_OK, now, due or advance(now), { message = message })

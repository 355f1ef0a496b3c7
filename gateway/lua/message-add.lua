--[[
  Stores a user message once per clientMessageId while the session is active; a repeat returns the first one.
  KEYS: common three, 4 session hash, 5 message log, 6 clientMessageId → message, 7 messageId → message.
  ARGV: common four, 5 sessionId, 6 clientMessageId, 7 new messageId, 8 content.
  Returns the common JSON with result = { message = JSON string of the stored message }; code 4 for a repeat.
]]
--@include live-state
local id, clientMessageId, messageId, content = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local now = nowMs()
advance(now)
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
local existing = redis.call('HGET', KEYS[6], clientMessageId)
if existing then
  return reply(CODE_DUPLICATE, now, advance(now), { message = existing })
end
if s.status ~= 'active' then
  return reply(CODE_INVALID_STATE, now, advance(now), { status = s.status })
end
local message = cjson.encode({
  id = messageId, sessionId = id, senderType = 'user', content = content, tokensUsed = 0,
  costIncrement = '0', createdAt = n2s(now), clientMessageId = clientMessageId,
})
redis.call('RPUSH', KEYS[5], message)
redis.call('HSET', KEYS[6], clientMessageId, message)
redis.call('HSET', KEYS[7], messageId, message)
save(s, {
  msgCount = n2s(tonumber(s.msgCount) + 1),
  userMsgCount = n2s(tonumber(s.userMsgCount) + 1),
  lastUserAt = n2s(now),
})
return reply(CODE_OK, now, advance(now), { message = message })

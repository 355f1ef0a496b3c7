--[[
  Stores the clone's completed reply once per messageId and adds its cost to the session.
  A reply that completes after the session ended is stored but costs nothing (the session is already billed).
  KEYS: common three, 4 session hash, 5 message log, 6 (unused), 7 messageId → message.
  ARGV: common four, 5 sessionId, 6 messageId, 7 content, 8 tokensUsed, 9 cost (units).
  Returns the common JSON with result = { message = JSON string }; code 4 for a repeat.
]]
--@include live-state
local id, messageId, content, tokens, cost = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local now = nowMs()
advance(now)
local existing = redis.call('HGET', KEYS[7], messageId)
if existing then return reply(CODE_DUPLICATE, now, advance(now), { message = existing }) end
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
if s.status == 'ended' then cost = 0 end
local message = cjson.encode({
  id = messageId, sessionId = id, senderType = 'ai', content = content, tokensUsed = tokens,
  costIncrement = n2s(cost), createdAt = n2s(now), clientMessageId = false,
})
redis.call('RPUSH', KEYS[5], message)
redis.call('HSET', KEYS[7], messageId, message)
if s.status ~= 'ended' then
  save(s, { msgCount = n2s(tonumber(s.msgCount) + 1), aiCost = n2s(tonumber(s.aiCost) + cost) })
  -- the cost is incurred now: exhaustion it causes happens now, not earlier
  redis.call('HSET', accountKey, 'cursor', n2s(now))
end
return reply(CODE_OK, now, advance(now), { message = message })

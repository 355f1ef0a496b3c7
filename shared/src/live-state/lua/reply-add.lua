--[[
  Stores the clone's completed reply once per messageId and adds its cost to the session.
  A reply that completes after the session ended is stored but costs nothing (the session is already billed).
  KEYS: common five, 6 session hash, 7 message log, 8 (unused), 9 messageId → message.
  ARGV: common three, 4 sessionId, 5 messageId, 6 content, 7 tokensUsed, 8 cost (units),
        9 citations JSON ([{ documentId, title, chunkIndex }]).
  Returns the common JSON with result = { message = JSON string }; code 4 for a repeat.
]]
startRun(KEYS, ARGV)
local id, messageId, content, tokens, cost = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local citations = cjson.decode(ARGV[9])
local now = nowMs()
catchUp(now)
local existing = redis.call('HGET', KEYS[9], messageId)
if existing then return reply(CODE_DUPLICATE, now, advance(now), { message = existing }) end
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
if s.status == 'ended' then cost = 0 end
local fields = {
  id = messageId, sessionId = id, senderType = 'ai', content = content, tokensUsed = tokens,
  costIncrement = n2s(cost), createdAt = n2s(now), clientMessageId = false, citations = citations,
}
local message = cjson.encode(fields)
redis.call('RPUSH', KEYS[7], message)
redis.call('HSET', KEYS[9], messageId, message)
if s.status ~= 'ended' then
  save(s, { msgCount = n2s(tonumber(s.msgCount) + 1), aiCost = n2s(tonumber(s.aiCost) + cost) })
  -- the cost is incurred now: exhaustion it causes happens now, not earlier
  redis.call('HSET', accountKey, 'cursor', n2s(now))
end
record('message', { session = header(s), message = fields })
return reply(CODE_OK, now, advance(now), { message = message })

--[[
  The user's last socket on gateway ARGV[3] went away: forget that sighting, and if no other gateway has seen the
  user recently, their active chats pause now (they are connected nowhere).
  KEYS: the common five.  ARGV: the common three (gateway id required).
  Returns the common JSON.
]]
startRun(KEYS, ARGV)
local now = nowMs()
catchUp(now)
redis.call('HDEL', presenceKey, gatewayId)
local seen = lastSeen()
if seen == nil or now - seen > PRESENCE_STALE_MS then
  pauseChats(openSessions(), now)
  redis.call('DEL', presenceKey)
end
return reply(CODE_OK, now, advance(now))

--[[
  Someone spoke in a voice/video session's room (the agent heard the user, or the clone spoke): the session is not
  idle. Records the instant; a session paused for silence (`voice_idle`) is metered again from now if it is still a
  conversation (the user and an agent in the room, not held by the user).
  KEYS: common five, 6 the session's hash. ARGV: common three (gateway id ''), 4 sessionId.
  Returns the common JSON; code 1 unknown session.
]]
startRun(KEYS, ARGV)
local id = ARGV[4]
local now = begin()
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
if s.status == 'ended' or s.type == 'chat' then return reply(CODE_OK, now, advance(now)) end
save(s, { lastVoiceAt = n2s(now) })
local together = #cjson.decode(s.roomIn or '[]') > 0 and #cjson.decode(s.agentIn or '[]') > 0
if s.status == 'paused' and s.pausedBy == 'voice_idle' and s.held ~= '1' and together then
  resumeOrExhaust(s, now, now, 'voice')
end
return reply(CODE_OK, now, advance(now))

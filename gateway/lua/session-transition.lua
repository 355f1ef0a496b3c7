--[[
  pause, resume or end one session on the user's request, after applying everything already due.
  KEYS: common five, 6 the session's hash.
  ARGV: common three, 4 sessionId, 5 action (pause|resume|end), 6 end reason.
  Returns the common JSON; code 1 unknown session, 2 illegal transition, 3 no credits left to resume.
]]
--@include live-state
local id, action, reason = ARGV[4], ARGV[5], ARGV[6]
local now = begin()
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
local legal = (action == 'pause' and s.status == 'active')
  or (action == 'resume' and s.status == 'paused')
  or (action == 'end' and s.status ~= 'ended')
if not legal then
  return reply(CODE_INVALID_STATE, now, advance(now), { status = s.status })
end
if action == 'resume' and budget() - totalAt(openSessions(), now) <= 0 then
  return reply(CODE_INSUFFICIENT, now, advance(now))
end
if action == 'pause' then
  transition(s, 'paused', now, reason)
elseif action == 'resume' then
  transition(s, 'active', now, reason)
else
  transition(s, 'ended', now, reason)
end
return reply(CODE_OK, now, advance(now))

--[[
  pause, resume or end one session on the user's request, after applying everything already due.
  A voice/video session follows its room: `pause` holds it (paused even while the user is in the room), `resume`
  lifts the hold and makes it active only if the user is in the room.
  KEYS: common five, 6 the session's hash.
  ARGV: common three, 4 sessionId, 5 action (pause|resume|end), 6 end reason.
  Pause of a paused chat and resume of an active one are answered ok (idempotent).
  Returns the common JSON; code 1 unknown session, 2 illegal transition, 3 no credits left to resume.
]]
startRun(KEYS, ARGV)
local id, action, reason = ARGV[4], ARGV[5], ARGV[6]
local now = begin()
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now)) end
touched[id] = true
if s.type ~= 'chat' and s.status ~= 'ended' and action ~= 'end' then
  if action == 'pause' then
    save(s, { held = '1' })
    if s.status == 'active' then transition(s, 'paused', now, reason) end
    return reply(CODE_OK, now, advance(now))
  end
  if s.status ~= 'paused' or s.held ~= '1' then
    return reply(CODE_INVALID_STATE, now, advance(now), { status = s.status, reason = statusReason(s) })
  end
  -- metered again only in a conversation: the user and the clone's agent both in the room
  local userIn, agentIn = #cjson.decode(s.roomIn or '[]') > 0, #cjson.decode(s.agentIn or '[]') > 0
  local inRoom = userIn and agentIn
  if inRoom and budget() - totalAt(openSessions(), now) <= 0 then
    return reply(CODE_INSUFFICIENT, now, advance(now))
  end
  local fields = { held = '0' }
  -- the user is back in a room with no agent: the wait for one starts now
  if userIn and not agentIn and (s.agentBy or '') == '' then fields.agentBy = n2s(now + AGENT_JOIN_TIMEOUT_MS) end
  save(s, fields)
  if inRoom then transition(s, 'active', now, reason) end
  return reply(CODE_OK, now, advance(now))
end
-- A request whose outcome already holds is answered ok, as a retry of it would be: pausing a paused chat makes the
-- pause the user's (a message no longer resumes it), resuming an active one changes nothing.
if action == 'pause' and s.status == 'paused' then
  if s.pausedBy ~= reason then save(s, { pausedBy = reason }) end
  return reply(CODE_OK, now, advance(now))
end
if action == 'resume' and s.status == 'active' then return reply(CODE_OK, now, advance(now)) end
local legal = (action == 'pause' and s.status == 'active')
  or (action == 'resume' and s.status == 'paused')
  or (action == 'end' and s.status ~= 'ended')
if not legal then
  return reply(CODE_INVALID_STATE, now, advance(now), { status = s.status, reason = statusReason(s) })
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

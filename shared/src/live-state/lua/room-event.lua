--[[
  A LiveKit webhook about the user's own participant, or the clone's agent, in a voice/video session's room, verified
  by the gateway.
  Webhooks can come late, twice or out of order, so: a repeated event id changes nothing; each participant sid
  joins once and leaves once, and a join that arrives after its own leave is ignored; a pause or end applies at
  the event's own instant (never before the session's last change), a join never before the instant it happened.
  That way no time the user was outside the room is charged.
  KEYS: common five, 6 the session's hash, 7 set of webhook event ids seen for it.
  ARGV: common three (gateway id ''), 4 sessionId, 5 event id, 6 kind (joined | left | finished),
        7 participant sid ('' for finished), 8 the event's instant (ms, LiveKit's clock), 9 WEBHOOK_SKEW_MS,
        10 whose participant: 'user' or 'agent' (the clone's voice agent).
  A session is metered while the user and the clone's agent are both in the room: the user alone waits, free, for
  an agent at most AGENT_JOIN_TIMEOUT_MS (then it ends, `agent_timeout`); an agent that leaves pauses it until
  another joins, with the same bound.
  The skew — Redis time at receipt minus the event's instant — is measured for every webhook; beyond the bound (a
  LiveKit clock running ahead or behind, or a delivery very late) the instant of receipt is used instead, so no
  clock's error shifts a charge by more than the bound.
  Returns the common JSON; code 1 unknown session, 4 duplicate event; result.ended = true when the session is over
  (the gateway then removes the user from the room); result.skewMs, and result.skewed when receipt time was used;
  result.roomChanged when what the user is shown of the room changed (who is in it, a deadline of the wait).
]]
startRun(KEYS, ARGV)
local id, eventId, kind, participant, role = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[10]
local now = begin()
local instant, skewBound = tonumber(ARGV[8]), tonumber(ARGV[9])
local skew = now - instant
local skewed = math.abs(skew) > skewBound
local at = skewed and now or math.min(instant, now)
local s = loadSession(id)
if not s then return reply(CODE_NOT_FOUND, now, advance(now), { skewMs = skew, skewed = skewed }) end
touched[id] = true
if redis.call('SADD', KEYS[7], eventId) == 0 then
  return reply(CODE_DUPLICATE, now, advance(now), { ended = s.status == 'ended', skewMs = skew, skewed = skewed })
end
if s.status == 'ended' then
  redis.call('PEXPIRE', KEYS[7], ENDED_TTL_MS)
  return reply(CODE_OK, now, advance(now), { ended = true, skewMs = skew, skewed = skewed })
end

local function without(list, value)
  local out = {}
  for _, v in ipairs(list) do if v ~= value then out[#out + 1] = v end end
  return out
end
local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local inRoom, gone = cjson.decode(s.roomIn or '[]'), cjson.decode(s.roomGone or '[]')
local agents = cjson.decode(s.agentIn or '[]')
-- what the user is shown of the room (WireSession.room): told again only when it changes
local function roomView()
  return table.concat({ tostring(#inRoom > 0), tostring(#agents > 0), s.agentBy or '', s.joinBy or '' }, '|')
end
local viewBefore = roomView()
local function leaves(list)
  gone = without(gone, participant)
  gone[#gone + 1] = participant
  -- a participant sid never comes back; the last few are enough to recognise a late join
  while #gone > 32 do table.remove(gone, 1) end
  return without(list, participant)
end
-- a conversation: the user and the clone's agent both in the room (and the user not holding the session)
local function resumeIfTogether()
  if s.status ~= 'paused' or s.held == '1' or #inRoom == 0 or #agents == 0 then return end
  resumeOrExhaust(s, math.max(at, tonumber(s.pausedAt)), now, 'joined')
end

if kind == 'joined' and role == 'agent' then
  if not contains(gone, participant) then
    if not contains(agents, participant) then agents[#agents + 1] = participant end
    save(s, { agentIn = cjson.encode(agents), agentBy = '' })
    resumeIfTogether()
  end
elseif kind == 'joined' then
  if not contains(gone, participant) then
    if not contains(inRoom, participant) then inRoom[#inRoom + 1] = participant end
    local fields = { roomIn = cjson.encode(inRoom), joinBy = '' }
    -- the user waits for an agent, free, at most AGENT_JOIN_TIMEOUT_MS
    if #agents == 0 and (s.agentBy or '') == '' then fields.agentBy = n2s(now + AGENT_JOIN_TIMEOUT_MS) end
    save(s, fields)
    resumeIfTogether()
  end
elseif kind == 'left' and role == 'agent' then
  agents = leaves(agents)
  local fields = { agentIn = cjson.encode(agents), roomGone = cjson.encode(gone) }
  -- the clone's voice is gone mid-conversation: the meter waits for another agent, with the same bound (not while the
  -- user holds the session: lifting the hold starts the wait)
  if #agents == 0 and #inRoom > 0 and s.held ~= '1' then fields.agentBy = n2s(now + AGENT_JOIN_TIMEOUT_MS) end
  save(s, fields)
  if #agents == 0 and s.status == 'active' then
    transition(s, 'paused', math.max(at, tonumber(s.resumedAt)), 'agent_left')
  end
elseif kind == 'left' then
  inRoom = leaves(inRoom)
  local fields = { roomIn = cjson.encode(inRoom), roomGone = cjson.encode(gone) }
  -- nobody is waiting for an agent any more (the paused session's own timeout runs)
  if #inRoom == 0 then fields.agentBy = '' end
  save(s, fields)
  if #inRoom == 0 and s.status == 'active' then
    transition(s, 'paused', math.max(at, tonumber(s.resumedAt)), 'left_room')
  end
else
  local endAt = now
  if s.status == 'active' then endAt = math.max(at, tonumber(s.resumedAt)) end
  transition(s, 'ended', endAt, 'room_finished')
end
local roomChanged = roomView() ~= viewBefore
return reply(CODE_OK, now, advance(now), { ended = s.status == 'ended', skewMs = skew, skewed = skewed, roomChanged = roomChanged })

--[[
  Shared core of every live-state script (each begins with `startRun(KEYS, ARGV)`; lua-scripts.ts puts this file
  once at the head of the library every script is a function of).
  A user's live state: an account hash (credits as of a Postgres credits_version, and `cursor`, the last instant
  the meter was advanced to), the unsettled totals of ended sessions, the set of open sessions, one hash per
  session, the user's presence (gateway id → last instant it saw one of the user's sockets) and an outbox stream of
  billing facts, written in the same script as the change they record so no change can happen without its record.
  All numbers are integers: money in units of 0.0001 credit, times in ms of Redis server time.

  Common KEYS:  1 account, 2 unsettled, 3 open, 4 outbox, 5 presence — all of one user, so under a Redis Cluster
                the script runs in that user's slot. The index of non-empty outboxes lives elsewhere (per bucket):
                the caller adds the outbox to it when the answer's `outbox` is not empty.
  Common ARGV:  1 key base of the user, 2 settings JSON { idleMs, pausedEndMs, endedTtlMs, presenceTimeoutMs,
                presenceStaleMs, checkpointMs, messageRatePerMin }, 3 gateway id of a socket request or ''
                (refreshes its presence)
  Every script returns JSON: { rev, code, now, nextDue, schedule, budget, available, open, changes,
  sessions = { id = hash }, outbox, result }:
  - `reading`: false when `open` was left empty on purpose (the due scheduler's answer when nothing was due);
  - `eventDue`: the next instant an event is due apart from absence and checkpoints (false: none) — a reading
    projected past it may miss an idle pause, an exhaustion or a timeout, so it is read again there;
  - `rev`: the account's revision, moved by every run that changes what `open`, `budget` or `available` derive from
    (a meter reading taken at `now` stays true, projected forward in time, for as long as `rev` does not move);
  - `schedule`: whether the caller must put nextDue in the due schedule (false when the schedule already holds it
    or an earlier instant);
  - `sessions`: the whole state of only the sessions the script changed or is about (not every open session);
  - `open`: a meter reading of every open session at `now`, [id, type, status, rate, activeMs, cost, lowSent];
  - `available`: budget − Σ cost of the open sessions at `now`.
  Each session hash is read at most once per run (`loaded`): every function sees, and `save` updates, one table.
  Each advance stores in the account when something is next due (`dueAt`, `absentWatch`; see storedDue), so a run
  with nothing due skips the advance loop altogether.
  code: 0 ok, 1 not_found, 2 invalid_state, 3 insufficient_credits, 4 duplicate (same answer as the first time),
        5 too many open sessions, 6 too many messages this minute.
]]
local CODE_OK, CODE_NOT_FOUND, CODE_INVALID_STATE, CODE_INSUFFICIENT, CODE_DUPLICATE = 0, 1, 2, 3, 4
local CODE_TOO_MANY, CODE_MESSAGE_RATE = 5, 6

-- A run's state. The scripts are functions of one Redis Functions library (lua-scripts.ts): this file's definitions
-- are made once when the library loads, and its chunk-level variables outlive a call, so `startRun` (the first line
-- of every live-state script) sets each of them afresh from the call's KEYS and ARGV.
local accountKey, unsettledKey, openKey, outboxKey, presenceKey, keyBase, gatewayId
local IDLE_MS, PAUSED_END_MS, ENDED_TTL_MS, PRESENCE_TIMEOUT_MS, PRESENCE_STALE_MS, CHECKPOINT_MS
local MESSAGE_RATE_PER_MIN, JOIN_TIMEOUT_MS, AGENT_JOIN_TIMEOUT_MS, VOICE_IDLE_MS
local settingsJson = nil -- the settings last decoded (every caller sends the same JSON: decoded once per load)
local loaded    -- id → the session's table: one HGETALL per session per run, one table everyone shares
local touched   -- ids of sessions this run returns
local changes   -- state changes this run made, in order
local recorded  -- outbox entries this run added
local openIds   -- sorted ids of the open set, read once per run (openSessions)
-- The next instant an event (idle, exhaustion, a timeout) is due, apart from absence and checkpoints, as this run's
-- advance found it or the last one stored it (`eventDue` in the account); nil: none. Unknown (never stored, or
-- forgotten by a new balance) it reads as now, so a gateway projecting a reading reads the state instead.
local eventDueKnown, eventDueValue
local budgetValue -- budget(), read once per run until the unsettled totals or the credits change

-- Whether this run changed what a meter reading derives from (a reading's session fields, the open set, the
-- budget): the answer's `rev` is then a new revision of the account, so a gateway holding a reading of an older one
-- knows it is stale. Checkpoints, message counts and the like leave readings, and the revision, as they are.
local changed
local priorRead, priorDue -- the first storedDue() of this run: what the due schedule already covers

local function startRun(KEYS, ARGV)
  accountKey, unsettledKey, openKey, outboxKey, presenceKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  keyBase, gatewayId = ARGV[1], ARGV[3]
  if ARGV[2] ~= settingsJson then
    local settings = cjson.decode(ARGV[2])
    IDLE_MS = tonumber(settings.idleMs)
    PAUSED_END_MS = tonumber(settings.pausedEndMs)
    ENDED_TTL_MS = tonumber(settings.endedTtlMs)
    PRESENCE_TIMEOUT_MS = tonumber(settings.presenceTimeoutMs)
    PRESENCE_STALE_MS = tonumber(settings.presenceStaleMs)
    CHECKPOINT_MS = tonumber(settings.checkpointMs)
    MESSAGE_RATE_PER_MIN = tonumber(settings.messageRatePerMin)
    JOIN_TIMEOUT_MS = tonumber(settings.joinTimeoutMs)
    AGENT_JOIN_TIMEOUT_MS = tonumber(settings.agentJoinTimeoutMs)
    VOICE_IDLE_MS = tonumber(settings.voiceIdleMs) or 0
    settingsJson = ARGV[2]
  end
  loaded, touched, changes, recorded, openIds = {}, {}, {}, {}, nil
  eventDueKnown, eventDueValue, budgetValue, changed, priorRead, priorDue = false, nil, nil, false, false, nil
end

local function sessionKey(id) return keyBase .. 's:' .. id end

-- Integers as exact decimal strings (Redis would otherwise format large numbers as %.14g).
local function n2s(x) return string.format('%.0f', x) end

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A stored `eventDue`: '' nothing due; missing: unknown, which reads as now.
local function parseEventDue(raw)
  if raw == '' then return nil end
  if not raw then return nowMs() end
  return tonumber(raw)
end

-- rate × ms / 60000 rounded half-up, split by whole minutes so every intermediate stays below 2^53.
local function timeCost(rate, ms)
  local minutes = math.floor(ms / 60000)
  local rest = ms - minutes * 60000
  return rate * minutes + math.floor((rate * rest * 2 + 60000) / 120000)
end

local function loadSession(id)
  local s = loaded[id]
  if s then return s end
  local flat = redis.call('HGETALL', sessionKey(id))
  if #flat == 0 then return nil end
  s = {}
  for i = 1, #flat, 2 do s[flat[i]] = flat[i + 1] end
  loaded[id] = s
  return s
end

local function activeMsAt(s, t)
  local ms = tonumber(s.activeMs)
  if s.status == 'active' then ms = ms + math.max(0, t - tonumber(s.resumedAt)) end
  return ms
end

local function costAt(s, t)
  local c = timeCost(tonumber(s.rate), activeMsAt(s, t)) + tonumber(s.aiCost)
  if s.cap ~= nil and s.cap ~= '' then c = math.min(c, tonumber(s.cap)) end
  return c
end

local READING_FIELD = { type = true, status = true, rate = true, activeMs = true, resumedAt = true, aiCost = true, cap = true }

local function markChanged() changed = true end

-- Why a session is in its status (the wire's `reason`): what paused it, or why it ended.
local function statusReason(s)
  if s.status == 'paused' then return s.pausedBy or '' end
  if s.status == 'ended' then return s.reason or '' end
  return ''
end

local function save(s, fields)
  local args = {}
  for k, v in pairs(fields) do
    if READING_FIELD[k] then changed = true end
    s[k] = v
    args[#args + 1] = k
    args[#args + 1] = v
  end
  redis.call('HSET', sessionKey(s.id), unpack(args))
  touched[s.id] = true
end

-- The facts every billing record of a session carries, so records can be applied in any order.
local function header(s)
  return { sessionId = s.id, userId = s.userId, cloneId = s.cloneId, type = s.type, rate = s.rate, startedAt = s.startedAt }
end

-- Appends a billing fact to the outbox; the relay turns it into a queued job and deletes it.
local function record(kind, fields)
  local data = cjson.encode(fields)
  local id = redis.call('XADD', outboxKey, '*', 'kind', kind, 'data', data)
  recorded[#recorded + 1] = { id = id, kind = kind, data = data }
end

-- A checkpoint changes nothing a caller acts on: the session is not `touched` (its whole hash stays out of the
-- answer, which for a user with many sessions was most of a checkpointing run's cost).
local function recordCheckpoint(s, at)
  record('checkpoint', {
    session = header(s), version = s.version, at = n2s(at), activeMs = n2s(activeMsAt(s, at)),
    cost = n2s(costAt(s, at)), messageCount = s.msgCount,
  })
  s.checkpointAt = n2s(at)
  redis.call('HSET', sessionKey(s.id), 'checkpointAt', s.checkpointAt)
end

-- Moves a session to `status` at instant `at` (<= now), bumping its version; `reason` says why (user, idle,
-- disconnected, credits_exhausted, idle_timeout, ...) and is kept as the end reason of an ended session.
local function transition(s, status, at, reason)
  local fields = { status = status, version = n2s(tonumber(s.version) + 1) }
  local total
  if status == 'paused' then
    fields.activeMs = n2s(activeMsAt(s, at))
    fields.pausedAt = n2s(at)
    fields.pausedBy = reason or ''
  elseif status == 'active' then
    fields.resumedAt = n2s(at)
    fields.lastUserAt = n2s(at)
  else
    local active = activeMsAt(s, at)
    local tc = timeCost(tonumber(s.rate), active)
    total = tc + tonumber(s.aiCost)
    if s.cap ~= '' then total = math.min(total, tonumber(s.cap)) end
    fields.activeMs = n2s(active)
    fields.endedAt = n2s(at)
    fields.reason = reason
    fields.timeCost = n2s(tc)
    fields.total = n2s(total)
  end
  save(s, fields)
  changes[#changes + 1] = {
    sessionId = s.id, status = status, version = tonumber(fields.version), at = n2s(at), reason = reason or '',
    activeMs = s.activeMs,
  }
  record('state', {
    session = header(s), status = status, version = s.version, at = n2s(at), activeMs = n2s(activeMsAt(s, at)),
    cost = n2s(costAt(s, at)), messageCount = s.msgCount, reason = reason or '',
  })
  if status == 'ended' then
    record('settle', {
      session = header(s), version = s.version, endedAt = s.endedAt, reason = reason, activeMs = s.activeMs,
      timeCost = s.timeCost, aiCost = s.aiCost, total = s.total, messageCount = s.msgCount,
      userMessageCount = s.userMsgCount,
    })
    redis.call('SREM', openKey, s.id)
    redis.call('HSET', unsettledKey, s.id, n2s(total))
    budgetValue = nil
    local key = sessionKey(s.id)
    for _, k in ipairs({ key, key .. ':log', key .. ':cmid', key .. ':mid', key .. ':hooks' }) do
      redis.call('PEXPIRE', k, ENDED_TTL_MS)
    end
  end
end

-- The user's open (active or paused) sessions, by id. The open set is read once per run; a session that ends
-- leaves it (transition) and drops out of this list by its status.
local function openSessions()
  if openIds == nil then
    local ids = redis.call('SMEMBERS', openKey)
    table.sort(ids)
    openIds = {}
    for _, id in ipairs(ids) do
      if loadSession(id) then
        openIds[#openIds + 1] = id
      else
        redis.call('SREM', openKey, id)
        changed = true
      end
    end
  end
  local list = {}
  for _, id in ipairs(openIds) do
    local s = loaded[id]
    if s and s.status ~= 'ended' then list[#list + 1] = s end
  end
  return list
end

-- A new session joins the open set.
local function addOpen(id)
  changed = true
  redis.call('SADD', openKey, id)
  if openIds ~= nil then
    openIds[#openIds + 1] = id
    table.sort(openIds)
  end
end

-- What the user may spend on open sessions: credits as of the last Postgres snapshot minus unsettled totals.
local function budget()
  if budgetValue == nil then
    local credits = tonumber(redis.call('HGET', accountKey, 'credits') or '0')
    for _, v in ipairs(redis.call('HVALS', unsettledKey)) do credits = credits - tonumber(v) end
    budgetValue = credits
  end
  return budgetValue
end

local function totalAt(list, t)
  local c = 0
  for _, s in ipairs(list) do c = c + costAt(s, t) end
  return c
end

-- Meters a paused voice/video session again from `from` (a conversation resumed), or, when the user's credits are
-- already gone by then, ends it at `now` (credits_exhausted).
local function resumeOrExhaust(s, from, now, reason)
  if budget() - totalAt(openSessions(), from) <= 0 then
    transition(s, 'ended', now, 'credits_exhausted')
  else
    transition(s, 'active', from, reason)
  end
end

-- The last instant any gateway saw one of the user's sockets, or nil when none has.
local function lastSeen()
  local latest = nil
  for _, v in ipairs(redis.call('HVALS', presenceKey)) do
    local t = tonumber(v)
    if latest == nil or t > latest then latest = t end
  end
  return latest
end

-- The earliest instant an active session of `list` is due to record a checkpoint (nil: none is active).
local function earliestCheckpoint(list)
  local earliest = nil
  for _, s in ipairs(list) do
    if s.status == 'active' then
      local due = tonumber(s.checkpointAt or s.startedAt) + CHECKPOINT_MS
      if earliest == nil or due < earliest then earliest = due end
    end
  end
  return earliest
end

local function hasActiveChat(list)
  for _, s in ipairs(list) do
    if s.status == 'active' and s.type == 'chat' then return true end
  end
  return false
end

-- How far ahead the exhaustion search looks; past it the answer is "check again then" (keeps every number small).
local SEARCH_HORIZON_MS = 86400000

-- When the open sessions' cost reaches the budget `b`, at or after `from`: ('exhaust', instant), or ('recheck',
-- instant) when it is beyond the search horizon, or nil when nothing burns. Sessions exactly at the budget with
-- nothing burning (all paused) are not exhausted: they cannot cost more.
local function exhaustionAt(list, b, from)
  if #list == 0 then return nil end
  local rateSum = 0
  for _, s in ipairs(list) do
    if s.status == 'active' then rateSum = rateSum + tonumber(s.rate) end
  end
  local total = totalAt(list, from)
  if total > b or (total >= b and rateSum > 0) then return 'exhaust', from end
  if rateSum == 0 then return nil end
  local lo, hi = from, from + SEARCH_HORIZON_MS
  if totalAt(list, hi) < b then return 'recheck', hi end
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if totalAt(list, mid) >= b then hi = mid else lo = mid end
  end
  return 'exhaust', hi
end

-- Credits ran out at `at`: end every active session there. Rounding can make the sessions cost a few units more
-- than the budget; that excess is trimmed (a `cap` on the session total) so the user never pays more than they had.
local function exhaust(list, b, at)
  local excess = totalAt(list, at) - b
  for pass = 1, 2 do
    for _, s in ipairs(list) do
      local ending = (pass == 1 and s.status == 'active') or (pass == 2 and s.status == 'paused' and excess > 0)
      if ending then
        local cost = costAt(s, at)
        local cut = math.min(math.max(excess, 0), cost)
        if cut > 0 then
          save(s, { cap = n2s(cost - cut) })
          excess = excess - cut
        end
        transition(s, 'ended', at, 'credits_exhausted')
      end
    end
  end
end

-- The user's sockets are gone since `at`: their active chats pause there (voice and video follow their room).
local function pauseChats(list, at)
  for _, s in ipairs(list) do
    if s.status == 'active' and s.type == 'chat' then
      transition(s, 'paused', math.max(at, tonumber(s.resumedAt)), 'disconnected')
    end
  end
end

-- Most due events one run applies; more (a user idle for years) are left for the next run, due at once.
local MAX_STEPS = 1000

-- Applies every due event up to `now` in time order (idle pause, paused timeout, credit exhaustion, the user gone
-- from every gateway), each at its exact instant, writes checkpoints that are due, and returns the next instant
-- something is due (or nil).
local function advance(now)
  local cursor = tonumber(redis.call('HGET', accountKey, 'cursor') or '0')
  for _ = 1, MAX_STEPS do
    local list = openSessions()
    local b = budget()
    local dueAt, action, target = nil, nil, nil
    local function consider(t, a, s)
      if dueAt == nil or t < dueAt then dueAt, action, target = t, a, s end
    end
    local from = cursor
    for _, s in ipairs(list) do
      if s.status == 'active' then from = math.max(from, tonumber(s.resumedAt)) end
    end
    local kind, at = exhaustionAt(list, b, math.min(from, now))
    if kind then consider(at, kind, nil) end
    for _, s in ipairs(list) do
      if s.status == 'active' and s.type == 'chat' then
        consider(math.max(tonumber(s.lastUserAt), tonumber(s.resumedAt)) + IDLE_MS, 'idle', s)
      elseif s.status == 'active' and VOICE_IDLE_MS > 0 then
        -- a conversation in which neither side has spoken for VOICE_IDLE_MS (voice-activity.lua)
        consider(math.max(tonumber(s.lastVoiceAt or '0') or 0, tonumber(s.resumedAt)) + VOICE_IDLE_MS, 'voice_idle', s)
      elseif s.status == 'paused' then
        consider(tonumber(s.pausedAt) + PAUSED_END_MS, 'paused_timeout', s)
        -- a voice/video session whose user never came into the room
        if s.joinBy ~= nil and s.joinBy ~= '' then consider(tonumber(s.joinBy), 'join_timeout', s) end
        -- a user in the room whom no agent joined (or whose agent left) in time
        if s.agentBy ~= nil and s.agentBy ~= '' then consider(tonumber(s.agentBy), 'agent_timeout', s) end
      end
    end
    -- what is due apart from absence, which moves with every sighting (storedDue adds it from the presence hash)
    local otherDue = dueAt
    -- what is due apart from absence and checkpoints: until then a meter reading projects exactly (eventDue)
    eventDueKnown, eventDueValue = true, dueAt
    local seen = lastSeen()
    local watching = hasActiveChat(list)
    if seen and watching then consider(seen + PRESENCE_TIMEOUT_MS, 'absent', nil) end
    if dueAt == nil or dueAt > now then
      -- checkpoints record the billed state as it is now; they change nothing, so they are written last. When one
      -- of the user's sessions is due, every active one records (earlier than it had to): the user's sessions then
      -- share one checkpoint instant, and one advance writes them all.
      local checkpointDue = earliestCheckpoint(list)
      if checkpointDue ~= nil and checkpointDue <= now then
        for _, s in ipairs(list) do
          if s.status == 'active' and tonumber(s.checkpointAt or s.startedAt) < now then recordCheckpoint(s, now) end
        end
        checkpointDue = earliestCheckpoint(list)
      end
      if checkpointDue ~= nil then
        if dueAt == nil or checkpointDue < dueAt then dueAt = checkpointDue end
        if otherDue == nil or checkpointDue < otherDue then otherDue = checkpointDue end
      end
      redis.call('HSET', accountKey, 'cursor', n2s(now), 'dueAt', otherDue and n2s(otherDue) or '',
        'absentWatch', watching and '1' or '0', 'eventDue', eventDueValue and n2s(eventDueValue) or '')
      return dueAt
    end
    local made = #changes
    if action == 'exhaust' then
      exhaust(list, b, dueAt)
    elseif action == 'idle' then
      transition(target, 'paused', dueAt, 'idle')
    elseif action == 'paused_timeout' then
      transition(target, 'ended', dueAt, 'idle_timeout')
    elseif action == 'join_timeout' then
      transition(target, 'ended', dueAt, 'join_timeout')
    elseif action == 'agent_timeout' then
      transition(target, 'ended', dueAt, 'agent_timeout')
    elseif action == 'voice_idle' then
      transition(target, 'paused', dueAt, 'voice_idle')
    elseif action == 'absent' then
      -- no gateway has seen the user since `seen`: the time after it is not charged
      pauseChats(list, seen)
      redis.call('DEL', presenceKey)
    end
    -- every step must end or pause something, or move the cursor (recheck); anything else would repeat forever
    if action ~= 'recheck' and #changes == made then break end
    cursor = math.max(cursor, dueAt)
  end
  eventDueKnown, eventDueValue = true, now
  redis.call('HSET', accountKey, 'cursor', n2s(math.min(cursor, now)), 'dueAt', n2s(now), 'eventDue', n2s(now))
  return now
end

-- The next instant something is due (+inf: nothing), as the last advance found it, or nil when unknown. Every
-- advance stores what is due apart from absence, and whether the user has an active chat (then absence is due
-- PRESENCE_TIMEOUT_MS after the latest sighting, read here: sightings move it later without an advance). It is
-- never later than the truth: whatever could make something due sooner is a live-state script (which advances
-- after its change) or a new balance (balance-snapshot.lua forgets it); presence only ever moves absence later,
-- except when scripts delete sightings, and they advance after.

local function storedDue()
  local stored = redis.call('HMGET', accountKey, 'dueAt', 'absentWatch', 'eventDue')
  if not eventDueKnown then eventDueKnown, eventDueValue = true, parseEventDue(stored[3]) end
  local due = nil
  if stored[1] then
    due = stored[1] == '' and math.huge or tonumber(stored[1])
    if stored[2] == '1' then
      local seen = lastSeen()
      if seen and seen + PRESENCE_TIMEOUT_MS < due then due = seen + PRESENCE_TIMEOUT_MS end
    end
  end
  if not priorRead then priorRead, priorDue = true, due end
  return due
end

-- Applies what is due up to `now`. When the last advance's due instant is still ahead, nothing is: only the cursor
-- moves to now, as the advance would have moved it (a script's closing advance recomputes everything after its own
-- change).
-- Returns the due instant the run now knows (nil: unknown) and whether nothing was due (the stored instant held).
local function catchUp(now)
  local due = storedDue()
  if due ~= nil and due > now then
    redis.call('HSET', accountKey, 'cursor', n2s(now))
    return due, true
  end
  return advance(now), false
end

-- A socket request through gateway `gatewayId`. When the user arrives at a gateway that was not seeing them, and
-- every gateway that was stopped seeing them a while ago (it died, the client came back elsewhere), their chats
-- pause where they were last seen. A gateway already seeing the user never pauses them here, however late its
-- own ticks run. Then this gateway's sighting is recorded.
local function notePresence(now)
  if gatewayId == '' then return end
  local seen = lastSeen()
  local arriving = redis.call('HEXISTS', presenceKey, gatewayId) == 0
  if seen and arriving and now - seen > PRESENCE_STALE_MS then
    local list = openSessions()
    if hasActiveChat(list) then pauseChats(list, seen) end
    redis.call('DEL', presenceKey)
  end
  redis.call('HSET', presenceKey, gatewayId, n2s(now))
end

-- Advances to now and records the socket's presence: how every script begins.
local function begin()
  local now = nowMs()
  catchUp(now)
  notePresence(now)
  return now
end

-- The fields of a session a meter reading needs (readOpen); all but lowSent move the revision (READING_FIELD):
-- a gateway notes the warnings it sends itself, and a second one asking is told the warning went out.
local READING_FIELDS = { 'type', 'status', 'rate', 'activeMs', 'resumedAt', 'aiCost', 'cap', 'lowSent' }

-- The open sessions with only the fields of a meter reading (HMGET, cheaper than whole hashes), for an answer that
-- reads and changes nothing. The tables are not the run's `loaded` ones: nothing may save them.
local function readOpen()
  local list = {}
  local ids = redis.call('SMEMBERS', openKey)
  table.sort(ids)
  for _, id in ipairs(ids) do
    local values = redis.call('HMGET', sessionKey(id), unpack(READING_FIELDS))
    if values[2] then
      local s = { id = id }
      for i, field in ipairs(READING_FIELDS) do s[field] = values[i] or nil end
      if s.status ~= 'ended' then list[#list + 1] = s end
    end
  end
  return list
end

-- The answer: the whole hash only of the sessions this run changed or is about, and a short meter reading of every
-- open session (what ticks, the low-balance warning and the available credits need), computed here at `now` with
-- the same arithmetic as the advance. `open` is the list to read (default: the run's open sessions); `noReading`
-- marks an answer whose `open` was left empty on purpose (it says nothing of the open sessions).
local function reply(code, now, nextDue, result, open, noReading)
  local sessions = {}
  for id in pairs(touched) do
    local s = loadSession(id)
    if s then sessions[id] = s end
  end
  local b = budget()
  local available = b
  local readings = {}
  for _, s in ipairs(open or openSessions()) do
    local cost = costAt(s, now)
    available = available - cost
    readings[#readings + 1] = { s.id, s.type, s.status, s.rate, n2s(activeMsAt(s, now)), n2s(cost), s.lowSent or '0' }
  end
  -- The due schedule holds, for every user, an instant no later than the one the last advance stored (its callers
  -- schedule what scripts answer), so the caller only needs to schedule `nextDue` when it is earlier than that, or
  -- when that was unknown or already past.
  local schedule = nextDue ~= nil and (not priorRead or priorDue == nil or priorDue <= now or nextDue < priorDue)
  local rev
  if changed then rev = redis.call('HINCRBY', accountKey, 'rev', 1) else rev = tonumber(redis.call('HGET', accountKey, 'rev') or '0') end
  if not eventDueKnown then
    eventDueKnown, eventDueValue = true, parseEventDue(redis.call('HGET', accountKey, 'eventDue') or nil)
  end
  return cjson.encode({
    rev = rev,
    eventDue = eventDueValue and n2s(eventDueValue) or false,
    reading = not noReading,
    code = code,
    now = n2s(now),
    nextDue = nextDue and n2s(nextDue) or false,
    schedule = schedule,
    budget = n2s(b),
    available = n2s(available),
    open = readings,
    changes = changes,
    sessions = sessions,
    outbox = recorded,
    result = result or false,
  })
end

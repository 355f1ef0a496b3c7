--[[
  Brings a user's live state up to now: applies every due event at its exact instant and writes due checkpoints.
  Used by the due-event scheduler (gateway id ''), and by gateways for meter ticks, connects and reads (a sighting
  of the user). When the last advance's due instant is still ahead and the sighting pauses nothing, nothing can have
  changed: the run then only moves the cursor and the sighting to now and reads the open sessions (no advance loop,
  no whole session hashes), which is what keeps a meter tick cheap.
  KEYS: the common five.  ARGV: the common three, 4 (optional) a session id whose whole state the answer includes,
  5 (optional) 'due': the due scheduler asking, which only needs what changed and the next due instant — when
  nothing was due the answer then carries no meter reading (`open` empty, `reading` false), which spares reading
  every open session of a user whose due instant was only a presence check.
  Returns the common JSON.
]]
startRun(KEYS, ARGV)
local now = nowMs()
local due, caughtUp = catchUp(now)
notePresence(now)
if ARGV[4] and ARGV[4] ~= '' then touched[ARGV[4]] = true end
if #changes == 0 then
  -- a refreshed sighting only moves absence later: the due instant found before it still holds (or comes early)
  if due == math.huge then due = nil end
  if caughtUp and ARGV[5] == 'due' then return reply(CODE_OK, now, due, nil, {}, true) end
  return reply(CODE_OK, now, due, nil, caughtUp and readOpen() or nil)
end
return reply(CODE_OK, now, advance(now))

--[[
  A RoomService check saw the user's participant in the session's room at ARGV[1] (Redis ms): the latest instant
  their presence is proved, from which a later check that misses them pauses the session.
  KEYS: 1 the session's hash. ARGV: 1 the instant.
  Nothing for a session that is gone or over (the hash is never recreated).
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'ended' then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'roomSeenAt') or '0') or 0
if tonumber(ARGV[1]) > seen then redis.call('HSET', KEYS[1], 'roomSeenAt', ARGV[1]) end
return 1

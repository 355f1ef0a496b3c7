--[[
  A voice agent claims (or renews its claim on) serving a session's room, for ARGV[2] ms.
  KEYS: 1 the session's agent claim.  ARGV: 1 agent id, 2 claim lifetime (ms).
  Returns 1 when the claim is this agent's, 0 when another agent holds it.
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1

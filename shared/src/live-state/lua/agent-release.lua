--[[
  A voice agent gives up its claim on a session's room (it left); another agent's claim is left alone.
  KEYS: 1 the session's agent claim.  ARGV: 1 agent id.
  Returns 1 when released, 0 when the claim was not this agent's.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1

--[[
  Records that the low-balance warning of a session was sent; true only the first time.
  KEYS: 1 session hash.  ARGV: none.
  Returns 1 the first time, 0 after (or when the session is gone).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'lowSent') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'lowSent', '1')
return 1

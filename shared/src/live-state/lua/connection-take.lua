-- Takes a connection slot for a socket (MAX_CONNECTIONS_PER_USER across gateways).
-- KEYS[1] = the user's connections zset (member: socket id, score: lease end, ms).
-- ARGV: socket id, the cap, lease ms. Returns 1 if the socket holds a slot (already, or a free one), 0 at the cap.
local now = leaseNow(KEYS[1])
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
-- the set expires with its last lease
redis.call('PEXPIRE', KEYS[1], lease)
return 1

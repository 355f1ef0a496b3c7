-- Renews the leases of the sockets one gateway holds for a user.
-- KEYS[1] = the user's connections zset. ARGV: lease ms, then the socket ids. Returns how many were renewed.
local now = leaseNow(KEYS[1])
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease)
return #ARGV - 1

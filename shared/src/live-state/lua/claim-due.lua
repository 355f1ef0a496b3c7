--[[
  Claims users whose due instant has passed, for one gateway, for a lease: users already leased to a gateway whose
  lease has not run out are skipped, so a gateway that dies mid-work hands its users over when its leases expire.
  KEYS: 1 the due sorted set, 2 the lease sorted set.  ARGV: 1 lease ms, 2 most users to claim.
  Returns a flat list: userId, due score, userId, due score, ...
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseMs, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit * 4)
local claimed = {}
for i = 1, #due, 2 do
  if #claimed >= limit * 2 then break end
  local lease = redis.call('ZSCORE', KEYS[2], due[i])
  if not lease or tonumber(lease) <= now then
    redis.call('ZADD', KEYS[2], string.format('%.0f', now + leaseMs), due[i])
    claimed[#claimed + 1] = due[i]
    claimed[#claimed + 1] = due[i + 1]
  end
end
return claimed

-- Redis time, so every gateway agrees on when a lease ends; the lapsed slots of the connections zset `key` are
-- dropped first. Returns now (ms).
local function leaseNow(key)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return now
end

--[[
  Deletes relayed entries from a user's outbox and counts what is left (the caller takes an emptied outbox out of
  its bucket of the index of non-empty outboxes, which lives in another slot).
  KEYS: 1 the user's outbox stream.  ARGV: the entry ids to delete (none: only count).
  Returns how many entries are left in the outbox.
]]
if #ARGV > 0 then redis.call('XDEL', KEYS[1], unpack(ARGV)) end
return redis.call('XLEN', KEYS[1])

--[[
  Deletes relayed entries from a user's outbox; when the outbox is left empty, takes it out of the index of
  non-empty outboxes (in the same script, so an entry recorded meanwhile always finds its outbox indexed).
  Called with no ids it only drops an empty outbox from the index (the sweep found nothing in it).
  KEYS: 1 the user's outbox stream, 2 the index of non-empty outboxes.  ARGV: the entry ids to delete.
  Returns how many entries are left in the outbox.
]]
if #ARGV > 0 then redis.call('XDEL', KEYS[1], unpack(ARGV)) end
local left = redis.call('XLEN', KEYS[1])
if left == 0 then redis.call('SREM', KEYS[2], KEYS[1]) end
return left

-- Reads one batch feature set for one consumed batch in a single command: the set's current
-- pointer, whether the version the reader uses still exists, and each entity's row. One command
-- per set and batch instead of one HMGET per entity keeps the client's per-command cost (command
-- objects, promises, reply callbacks) off the hot path; Redis does the same reads as before.
-- Read only. Batch sets are served by a single Redis only (their entity keys span slots).
--
-- KEYS[1] the set's pointer (string: current version)   KEYS[2] the set's versions hash
-- KEYS[3..] entity hashes of version ARGV[1]
-- ARGV[1] the reader's version ('-' when it has none)   ARGV[2..] the fields to read, in order
-- Returns { pointer or nil, 1 if ARGV[1] is a field of KEYS[2] else 0, HMGET reply per entity }.
local fields = { unpack(ARGV, 2) }
local out = { redis.call('GET', KEYS[1]), redis.call('HEXISTS', KEYS[2], ARGV[1]) }
for i = 3, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], unpack(fields))
end
return out

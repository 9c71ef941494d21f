-- Reads what the streaming state of one (partition, slot group) needs before it can compute a
-- chunk in the process: the checkpoint, the stored vectors of replayed offsets, and the stored
-- entities it does not hold yet. Read only; one call instead of one command per entity.
--
-- KEYS[1] checkpoint (last applied offset) of (group, partition)
-- KEYS[2] stored vectors of (group, partition): sorted set, score = last offset of a chunk,
--         member = JSON [offsets, per-event results]
-- KEYS[3..] entity hashes ('v' version stamp, 'b<bucket>:<first seq>' event fragments)
-- ARGV[1] '1' to read the checkpoint and the stored vectors, '0' for the entities only
-- ARGV[2] lowest offset of the chunk (chunks ending before it are not read)
-- Returns { checkpoint or false, { chunk members }, fields of KEYS[3], fields of KEYS[4], ... }.
local out = { false, {} }
if ARGV[1] == '1' then
  local ck = redis.call('GET', KEYS[1])
  out[1] = ck or false
  if ck and tonumber(ck) >= tonumber(ARGV[2]) then
    out[2] = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')
  end
end
for i = 3, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out

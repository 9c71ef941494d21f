-- Reads what the streaming state of one (partition, slot group) needs before it can compute a
-- chunk in the process: the checkpoint, the stored vectors of replayed offsets, and the stored
-- entities it does not hold yet. Read only.
--
-- KEYS[1] checkpoint (last applied offset) of (group, partition)
-- KEYS[2] stored vectors of (group, partition): sorted set, score = last offset of a chunk,
--         member = JSON [offsets, per-event results]
-- ARGV[1] '1' to read the checkpoint and the stored vectors, '0' for the entities only
-- ARGV[2] lowest offset of the chunk (chunks ending before it are not read)
-- ARGV[3] JSON array of the entity hashes to read ('v' version stamp, 'b<bucket>:<first seq>'
--         event fragments). They carry the group's hash tag, so they live in the
--         slot of KEYS (a Cluster serves them from this node); one argument keeps the client's
--         per-argument cost off the hot path.
-- Returns { checkpoint or false, { chunk members }, i, fields of the i-th entity, ... } for the
-- entities that exist (1-based positions in ARGV[3]); absent ones are left out.
--
-- Key layout of a namespace N and group g (all keys tagged {N:g}; src/features/streaming.ts):
-- epoch, ckpt, res (stored vectors), stats, e:<set>:<len>:<entity> (entity hashes).
local out = { false, {} }
if ARGV[1] == '1' then
  local ck = redis.call('GET', KEYS[1])
  out[1] = ck or false
  if ck and tonumber(ck) >= tonumber(ARGV[2]) then
    out[2] = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')
  end
end
for i, key in ipairs(cjson.decode(ARGV[3])) do
  local fields = redis.call('HGETALL', key)
  if #fields > 0 then
    out[#out + 1] = i
    out[#out + 1] = fields
  end
end
return out

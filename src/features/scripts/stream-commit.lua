-- Makes one computed chunk of one (partition, slot group) durable, atomically, or refuses it.
-- The process computed the chunk's vectors from its in-memory copy of the entities; this script
-- checks that the copy was current and writes what changed (no aggregation runs here).
--
-- KEYS[1] fencing epoch of (group, partition)   KEYS[2] checkpoint of (group, partition)
-- KEYS[3] stored vectors of (group, partition) (sorted set, score = last offset of the chunk)
-- KEYS[4] stats hash of the group
-- ARGV[1] epoch   ARGV[2] expected checkpoint ('-1' = none)   ARGV[3] new checkpoint ('' =
-- nothing applied)   ARGV[4] chunk member ('' = none)   ARGV[5] offsets of vectors to keep
-- ARGV[6] JSON { stats field: delta }   ARGV[7] MessagePack [[entity key, expected version ('' =
-- none stored), new version ('' = unchanged), [fields to delete], [field, value, ...]], ...]:
-- decoded in C (fragment values are JSON themselves and are neither escaped nor parsed again).
-- The entity keys carry the group's hash tag (same slot as KEYS); one argument keeps the
-- client's per-argument cost low. All values are strings.
-- Returns 'OK'; an error 'FENCED ...' when the caller's epoch is not current; or
-- { 'STALE', checkpoint, index of each entity whose version differs (1-based) } and writes
-- nothing: the caller reloads and computes the chunk again.
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return redis.error_reply('FENCED partition epoch is ' .. tostring(held) .. ', caller holds ' .. ARGV[1])
end
local ck = redis.call('GET', KEYS[2]) or '-1'
local ents = cmsgpack.unpack(ARGV[7])
local stale = {}
for i, e in ipairs(ents) do
  if (redis.call('HGET', e[1], 'v') or '') ~= e[2] then stale[#stale + 1] = i end
end
if ck ~= ARGV[2] or #stale > 0 then
  return { 'STALE', ck, unpack(stale) }
end
for _, e in ipairs(ents) do
  if #e[4] > 0 then redis.call('HDEL', e[1], unpack(e[4])) end
  if e[3] ~= '' then redis.call('HSET', e[1], 'v', e[3], unpack(e[5])) end
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%d', tonumber(ARGV[3]) - tonumber(ARGV[5]) + 1))
end
for field, n in pairs(cjson.decode(ARGV[6])) do redis.call('HINCRBY', KEYS[4], field, n) end
return 'OK'

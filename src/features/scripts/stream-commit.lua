-- Makes one computed chunk of one (partition, slot group) durable, atomically, or refuses it.
-- The process computed the chunk's vectors from its in-memory copy of the entities; this script
-- checks that the copy was current and writes what changed (no aggregation runs here).
--
-- KEYS[1] fencing epoch of (group, partition)   KEYS[2] checkpoint of (group, partition)
-- KEYS[3] stored vectors of (group, partition) (sorted set, score = last offset of the chunk)
-- KEYS[4] stats hash of the group               KEYS[5..] entity hashes of the chunk
-- ARGV: epoch, expected checkpoint ('-1' = none), new checkpoint ('' = nothing applied), chunk
--   member ('' = none), offsets of vectors to keep, number of stats fields, then field/delta
--   pairs, then per entity in KEYS order: expected version ('' = none stored), new version
--   ('' = unchanged), number of fields to delete, fields, number of field/value pairs, pairs.
-- Returns 'OK'; an error 'FENCED ...' when the caller's epoch is not current; or
-- { 'STALE', checkpoint, index of each entity whose version differs } and writes nothing: the
-- caller reloads and computes the chunk again (another process changed them, or its copy is old).
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return redis.error_reply('FENCED partition epoch is ' .. tostring(held) .. ', caller holds ' .. ARGV[1])
end
local ck = redis.call('GET', KEYS[2]) or '-1'
local stale = {}
local a = 7 + 2 * tonumber(ARGV[6])
local plan = {}
for k = 5, #KEYS do
  local expect, new = ARGV[a], ARGV[a + 1]
  if (redis.call('HGET', KEYS[k], 'v') or '') ~= expect then stale[#stale + 1] = k - 4 end
  local nd = tonumber(ARGV[a + 2])
  local ns = tonumber(ARGV[a + 3 + nd])
  plan[k] = { new = new, d0 = a + 3, nd = nd, s0 = a + 4 + nd, ns = ns }
  a = a + 4 + nd + 2 * ns
end
if ck ~= ARGV[2] or #stale > 0 then
  return { 'STALE', ck, unpack(stale) }
end
for k = 5, #KEYS do
  local p = plan[k]
  if p.nd > 0 then redis.call('HDEL', KEYS[k], unpack(ARGV, p.d0, p.d0 + p.nd - 1)) end
  if p.new ~= '' then redis.call('HSET', KEYS[k], 'v', p.new, unpack(ARGV, p.s0, p.s0 + 2 * p.ns - 1)) end
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
  local last = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%d', last - tonumber(ARGV[5]) + 1))
end
for i = 7, 6 + 2 * tonumber(ARGV[6]), 2 do redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1]) end
return 'OK'

-- Atomically makes a fully loaded feature-set version current.
-- KEYS[1] pointer (string: current version), KEYS[2] versions (hash: version -> JSON meta)
-- ARGV[1] new version, ARGV[2] now (ms), ARGV[3] JSON meta of the new version
-- Returns the previous version ('' if none). The previous version's meta gets retiredAt = now,
-- so `features gc` (and the next load) can delete it once the grace period has passed.
local prev = redis.call('GET', KEYS[1]) or ''
local meta = cjson.decode(ARGV[3])
meta['status'] = 'current'
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(meta))
if prev ~= '' and prev ~= ARGV[1] then
  local old = redis.call('HGET', KEYS[2], prev)
  if old then
    local m = cjson.decode(old)
    m['status'] = 'retired'
    m['retiredAt'] = tonumber(ARGV[2])
    redis.call('HSET', KEYS[2], prev, cjson.encode(m))
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return prev

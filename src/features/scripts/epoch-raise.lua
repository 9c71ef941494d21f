-- Raises a (slot group, partition) fencing epoch to ARGV[1] unless it already holds a greater one,
-- so concurrent assignments leave every group on the newest epoch. KEYS[1] the group's epoch key.
-- Returns the epoch the key holds afterwards.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if want > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return want
end
return cur

-- Records one reward for one arm of a bandit experiment, atomically and at most once per feedback id.
-- KEYS[1] posterior hash (fields <arm>:s successes, <arm>:f failures)
-- KEYS[2] set of feedback ids already counted
-- ARGV[1] feedback id, ARGV[2] arm, ARGV[3] reward (1 or 0), ARGV[4] ttl of the id set in seconds
-- Returns 1 when counted, 0 when this feedback id was counted before (replay after a crash).
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':s', 1)
else
  redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':f', 1)
end
return 1

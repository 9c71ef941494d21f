-- Applies one consumed batch (one topic partition) to the windowed-aggregation state and returns
-- every event's feature values "as of" the event. One atomic call per batch (reads + writes).
--
-- KEYS[1] epoch of the partition    KEYS[2] checkpoint (last applied offset) of the partition
-- KEYS[3] apply sequence counter    KEYS[4] stats hash
-- KEYS[5..] entity state (sorted sets; score = event time, member = "seq|partition:offset|late|json(values)")
-- ARGV[1] the caller's fencing epoch; ARGV[2] JSON request:
--   { p = partition, names = {set names}, sets = {{lat, ret, aggs = {{k, f, wt, sz, hop, d}}, maxW}},
--     ev = {{o = offset, t = eventTime, k = {KEYS index per set, 0 = no entity}, v = {{values per set}}}} }
--
-- Semantics (see src/features/streaming.ts): an event at time t is scored on the entity's events
-- that were applied before it (lower apply sequence), are not late, and have event time in the
-- aggregation's window ending at t. Events at offsets <= the checkpoint were applied by an earlier
-- attempt: they are not applied again and are scored exactly as then (their own sequence number is
-- found in the state). A caller whose epoch is not the partition's current one is fenced off.
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return redis.error_reply('FENCED partition epoch is ' .. tostring(held) .. ', caller holds ' .. ARGV[1])
end
local req = cjson.decode(ARGV[2])
local ckpt = tonumber(redis.call('GET', KEYS[2]) or '-1')
local fmt = function(x) return string.format('%.17g', x) end

local function parse(member, score)
  local s, tag, late, vals = string.match(member, '^(%d+)|([^|]*)|(%d)|(.*)$')
  return { s = tonumber(s), tag = tag, l = tonumber(late), t = tonumber(score), v = cjson.decode(vals) }
end

local function load(key, lo, hi)
  local raw = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(lo), fmt(hi), 'WITHSCORES')
  local out = {}
  for i = 1, #raw, 2 do out[#out + 1] = parse(raw[i], raw[i + 1]) end
  table.sort(out, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.s < b.s end)
  return out
end

local function aggregate(set, entries, t, ownSeq)
  local res = {}
  for ai, a in ipairs(set.aggs) do
    local start
    if a.wt == 's' then start = t - a.sz + 1 else start = math.floor(t / a.hop) * a.hop + a.hop - a.sz end
    local n, sum, mn, mx, lastT, lastV = 0, 0, nil, nil, nil, nil
    local seen, nd = {}, 0
    for _, e in ipairs(entries) do
      if e.l == 0 and e.s < ownSeq and e.t >= start and e.t <= t then
        n = n + 1
        local raw = a.f > 0 and e.v[a.f] or nil
        if a.k == 'distinct_count' then
          if raw ~= nil and not seen[raw] then seen[raw] = true; nd = nd + 1 end
        elseif raw ~= nil then
          local x = tonumber(raw)
          sum = sum + x
          if mn == nil or x < mn then mn = x end
          if mx == nil or x > mx then mx = x end
          lastV = x
        end
        lastT = e.t -- entries are sorted by (time, seq): the last qualifying one is the latest
      end
    end
    local d = tonumber(a.d)
    local v
    if a.k == 'count' then v = n
    elseif a.k == 'sum' then v = sum
    elseif a.k == 'mean' then if n > 0 then v = sum / n else v = d end
    elseif a.k == 'min' then v = mn or d
    elseif a.k == 'max' then v = mx or d
    elseif a.k == 'distinct_count' then v = nd
    elseif a.k == 'last' then v = lastV or d
    elseif a.k == 'time_since_prev' then if lastT ~= nil then v = t - lastT else v = d end
    end
    res[ai] = fmt(v)
  end
  return table.concat(res, ',')
end

local seqKey, stats = KEYS[3], KEYS[4]
local out = {}
local maxOffset = ckpt
local applied, replayed = 0, 0
for i, ev in ipairs(req.ev) do
  local replay = ev.o <= ckpt
  local tag = tostring(req.p) .. ':' .. string.format('%d', ev.o)
  local seq = nil
  if not replay then seq = redis.call('INCR', seqKey); applied = applied + 1 else replayed = replayed + 1 end
  local parts = {}
  for si, set in ipairs(req.sets) do
    local ki = ev.k[si]
    local t = ev.t
    if ki == 0 then
      local dv = {}
      for ai, a in ipairs(set.aggs) do dv[ai] = fmt(tonumber(a.d)) end
      parts[si] = '0:' .. table.concat(dv, ',')
    else
      local key = KEYS[ki]
      local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
      local maxT = nil
      if #top > 0 then maxT = tonumber(top[2]) end
      local entries = load(key, t - set.maxW, t)
      local ownSeq, late
      if replay then
        ownSeq = nil
        for _, e in ipairs(entries) do if e.tag == tag then ownSeq = e.s; late = e.l end end
        if ownSeq == nil then -- trimmed since (older than the retention): best effort
          ownSeq = math.huge
          if maxT ~= nil and t < maxT - set.lat then late = 1 else late = 0 end
        end
      else
        ownSeq = seq
        if maxT ~= nil and t < maxT - set.lat then late = 1 else late = 0 end
      end
      parts[si] = tostring(late) .. ':' .. aggregate(set, entries, t, ownSeq)
      if not replay then
        redis.call('ZADD', key, t, string.format('%d', seq) .. '|' .. tag .. '|' .. tostring(late) .. '|' .. cjson.encode(ev.v[si]))
        if late == 1 then redis.call('HINCRBY', stats, 'late:' .. req.names[si], 1) end
        local newMax = maxT
        if newMax == nil or t > newMax then newMax = t end
        redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt(newMax - set.ret))
      end
    end
  end
  out[i] = table.concat(parts, ';')
  if ev.o > maxOffset then maxOffset = ev.o end
end
if maxOffset > ckpt then redis.call('SET', KEYS[2], string.format('%d', maxOffset)) end
if applied > 0 then redis.call('HINCRBY', stats, 'applied', applied) end
if replayed > 0 then redis.call('HINCRBY', stats, 'replayed', replayed) end
return out

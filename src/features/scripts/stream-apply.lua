-- Applies the events of one consumed batch that fall in one slot group of one topic partition to
-- the incremental windowed-aggregation state, and returns every event's feature values "as of" the
-- event. One atomic call per (partition, slot group); all keys share the group's hash tag.
--
-- KEYS[1] epoch of (group, partition)   KEYS[2] checkpoint (last applied offset) of (group, partition)
-- KEYS[3] stored results of (group, partition): sorted set, score = offset, member = "offset|result"
-- KEYS[4] stats hash of the group (also holds 'seq', the group's apply sequence)
-- KEYS[5..] entity base keys (hash E); derived keys (same hash tag, so the same slot):
--   E..':z' bucket indexes present (sorted set)    E..':r' applied events (score = event time,
--   member = "seq|json(values)")    E..':x<w>:<slot>' / E..':n<w>:<slot>' per-bucket max / min of
--   window w (sorted sets, member = bucket)   E..':d<w>:<slot>' value -> occurrences in window w.
-- Fields of E: 'm' meta, 'b<bucket>' bucket summaries, 'k<block>' summaries of
-- blocks of F buckets (an out-of-order event reads whole blocks inside its window and buckets only
-- at the edges), 'a<w>' window accumulators (cmsgpack). A small entity (at most `small` events
-- in its widest window) has only E..':r' and is scored by scanning it; past that its summaries are
-- built once (buildBig) and kept.
-- ARGV[1] the caller's fencing epoch; ARGV[2] JSON request:
--   { sets = {{R, F, lat, ret, small, num = {slot flags}, dis = {slot flags},
--              wins = {{t = 's'|'h', sz, hop, acc, mn = {slots}, mx = {slots}, ds = {slots}, sm = {slots}}},
--              aggs = {{k, f = slot, w = window, d}}}},
--     names = {set names}, keep = results kept (offsets), p = partition,
--     ev = {{o = offset, t = event time, c = 1 when this group counts the event (applied/replayed),
--            k = {KEYS index per set, 0 = not in this group}, v = {{values}}}} }
--
-- Semantics (src/features/streaming.ts has the full statement): an event at time t in bucket
-- B = floor(t / R) is scored on the entity's non-late events applied before it whose bucket lies
-- in the window's bucket range and whose time is <= t. Sums are exact (Shewchuk partials, rounded
-- once), so they do not depend on the order events were added or evicted.
local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return redis.error_reply('FENCED partition epoch is ' .. tostring(held) .. ', caller holds ' .. ARGV[1])
end
local req = cjson.decode(ARGV[2])
local ckpt = tonumber(redis.call('GET', KEYS[2]) or '-1')
local mpack, munpack, tunpack = cmsgpack.pack, cmsgpack.unpack, unpack
local floor, abs = math.floor, math.abs
local function fmt(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end

-- Exact sums: a list of non-overlapping partials whose exact sum is the running total.
local function padd(p, x)
  local i, n = 0, #p
  for j = 1, n do
    local y = p[j]
    if abs(x) < abs(y) then x, y = y, x end
    local hi = x + y
    local lo = y - (hi - x)
    if lo ~= 0 then i = i + 1; p[i] = lo end
    x = hi
  end
  for j = n, i + 2, -1 do p[j] = nil end
  p[i + 1] = x
end
local function psum(p) -- the correctly rounded sum (as Python's math.fsum)
  local n = #p
  if n == 0 then return 0 end
  local hi, lo = p[n], 0
  n = n - 1
  while n > 0 do
    local x, y = hi, p[n]
    n = n - 1
    hi = x + y
    lo = y - (hi - x)
    if lo ~= 0 then break end
  end
  if n > 0 and ((lo < 0 and p[n] < 0) or (lo > 0 and p[n] > 0)) then
    local y = lo * 2
    local x = hi + y
    if y == x - hi then hi = x end
  end
  return hi + 0
end

-- Apply sequence of the slot group (orders an entity's events that share an event time); read
-- once and written back once per call, so it costs nothing per event.
local seqNow = tonumber(redis.call('HGET', KEYS[4], 'seq') or '0')
local seqStart = seqNow
local function nextSeq() seqNow = seqNow + 1; return seqNow end

local stats = {}
local function bump(field, by) if by ~= 0 then stats[field] = (stats[field] or 0) + by end end
local late_by_set, evicted_buckets, evicted_events = {}, {}, {}

-- First bucket of window w for an event at time t (bucket resolution R).
local function startBucket(w, t, R)
  if w.t == 's' then return floor(t / R) - w.sz / R + 1 end
  return (floor(t / w.hop) * w.hop + w.hop - w.sz) / R
end


-- Parses the members of E:r ("seq|json") into {t, s, v}.
local function rawEvents(E, lo, hi)
  if type(lo) == 'number' then lo = int(lo) end
  if type(hi) == 'number' then hi = int(hi) end
  local raw = redis.call('ZRANGEBYSCORE', E .. ':r', lo, hi, 'WITHSCORES')
  local out = {}
  for i = 1, #raw, 2 do
    local seq, vals = string.match(raw[i], '^(%d+)|(.*)$')
    out[#out + 1] = { t = tonumber(raw[i + 1]), s = tonumber(seq), v = cjson.decode(vals) }
  end
  return out
end

local function num(x) return (tonumber(x) or 0) + 0 end

-- A summary of some events (a bucket, or a block of F buckets): count, exact sums, min, max,
-- latest time and values, distinct values with their counts.
local function newRecord(set)
  local r = { n = 0, s = {}, mn = {}, mx = {}, lv = {}, d = {} }
  for slot, f in ipairs(set.num) do if f then r.s[slot] = {} end end
  for slot, f in ipairs(set.dis) do if f then r.d[slot] = {} end end
  return r
end

-- Adds an event (time t, numeric values xs, raw values vals) applied after every event in r.
local function addToRecord(set, r, t, xs, vals)
  r.n = r.n + 1
  local latest = r.lt == nil or t >= r.lt
  if latest then r.lt = t end
  for slot, x in pairs(xs) do
    padd(r.s[slot], x)
    if r.mn[slot] == nil or x < r.mn[slot] then r.mn[slot] = x end
    if r.mx[slot] == nil or x > r.mx[slot] then r.mx[slot] = x end
    if latest then r.lv[slot] = x end
  end
  for slot, f in ipairs(set.dis) do
    if f then local val = vals[slot]; r.d[slot][val] = (r.d[slot][val] or 0) + 1 end
  end
end

local function numericValues(set, vals)
  local xs = {}
  for slot, f in ipairs(set.num) do if f then xs[slot] = num(vals[slot]) end end
  return xs
end

-- The summaries covering buckets [lo, hi]: whole blocks of F buckets where they fit, buckets at
-- the edges (so at most 2 (F - 1) bucket and (hi - lo) / F block summaries).
local function rangeRecords(E, F, lo, hi)
  local out = {}
  if lo > hi then return out end
  local ranges, fields = {}, {}
  local kl, kh = floor(lo / F), floor(hi / F)
  if F > 1 and kh - kl >= 2 then
    ranges = { { lo, (kl + 1) * F - 1 }, { kh * F, hi } }
    for K = kl + 1, kh - 1 do fields[#fields + 1] = 'k' .. int(K) end
  else
    ranges = { { lo, hi } }
  end
  for _, r in ipairs(ranges) do
    for _, b in ipairs(redis.call('ZRANGEBYSCORE', E .. ':z', int(r[1]), int(r[2]))) do fields[#fields + 1] = 'b' .. b end
  end
  if #fields == 0 then return out end
  for _, rec in ipairs(redis.call('HMGET', E, tunpack(fields))) do
    if rec then out[#out + 1] = munpack(rec) end
  end
  return out
end

-- Scores an event from the buckets (general path: any event time, reads only).
local function scoreFromBuckets(set, E, t, B)
  local R = set.R
  local records = {} -- per window: the summaries of its buckets before B
  for wi, w in ipairs(set.wins) do
    if w.acc then records[wi] = rangeRecords(E, set.F, startBucket(w, t, R), B - 1) end
  end
  local current = rawEvents(E, B * R, t) -- bucket B, times <= t
  local res = {}
  for ai, a in ipairs(set.aggs) do
    local w = set.wins[a.w]
    local sb = startBucket(w, t, R)
    local d = a.d
    local v
    if a.k == 'last' or a.k == 'time_since_prev' then
      local lt, ls, lv = nil, -1, nil
      for _, e in ipairs(current) do
        if lt == nil or e.t > lt or (e.t == lt and e.s > ls) then lt, ls, lv = e.t, e.s, e.v end
      end
      if lt ~= nil then
        if lv ~= nil and a.f > 0 then lv = num(lv[a.f]) end
      elseif sb <= B - 1 then
        local top = redis.call('ZREVRANGEBYSCORE', E .. ':z', int(B - 1), int(sb), 'LIMIT', 0, 1)
        if #top > 0 then
          local rec = munpack(redis.call('HGET', E, 'b' .. top[1]))
          lt = rec.lt
          if a.f > 0 then lv = rec.lv[a.f] end
        end
      end
      if lt == nil then v = d elseif a.k == 'last' then v = lv else v = t - lt end
    else
      local n, p, mn, mx, seen, nd = 0, {}, nil, nil, {}, 0
      for _, r in ipairs(records[a.w]) do
        do
          n = n + r.n
          if a.f > 0 then
            if a.k == 'distinct_count' then
              for val, _ in pairs(r.d[a.f]) do if not seen[val] then seen[val] = true; nd = nd + 1 end end
            elseif a.k == 'sum' or a.k == 'mean' then
              for _, x in ipairs(r.s[a.f]) do padd(p, x) end
            elseif a.k == 'min' or a.k == 'max' then
              if mn == nil or r.mn[a.f] < mn then mn = r.mn[a.f] end
              if mx == nil or r.mx[a.f] > mx then mx = r.mx[a.f] end
            end
          end
        end
      end
      if B >= sb then
        for _, e in ipairs(current) do
          n = n + 1
          if a.f > 0 then
            local raw = e.v[a.f]
            if a.k == 'distinct_count' then
              if not seen[raw] then seen[raw] = true; nd = nd + 1 end
            elseif a.k ~= 'count' then
              local x = num(raw)
              padd(p, x)
              if mn == nil or x < mn then mn = x end
              if mx == nil or x > mx then mx = x end
            end
          end
        end
      end
      if a.k == 'count' then v = n
      elseif a.k == 'sum' then v = psum(p)
      elseif a.k == 'mean' then if n > 0 then v = psum(p) / n else v = d end
      elseif a.k == 'min' then v = mn or d
      elseif a.k == 'max' then v = mx or d
      else v = nd end
    end
    res[ai] = fmt(v)
  end
  return table.concat(res, ',')
end

-- Aggregations as of t over events sorted by (time, seq), all with time <= t (small entities).
local function scoreRows(set, rows, t)
  local R = set.R
  local res = {}
  for ai, a in ipairs(set.aggs) do
    local start = startBucket(set.wins[a.w], t, R) * R
    local n, p, mn, mx, seen, nd, lt, lv = 0, {}, nil, nil, {}, 0, nil, nil
    for _, e in ipairs(rows) do
      if e.t >= start then
        n = n + 1
        lt = e.t
        if a.f > 0 then
          local raw = e.v[a.f]
          if a.k == 'distinct_count' then
            if not seen[raw] then seen[raw] = true; nd = nd + 1 end
          elseif a.k ~= 'count' then
            local x = num(raw)
            if a.k == 'sum' or a.k == 'mean' then padd(p, x) end
            if mn == nil or x < mn then mn = x end
            if mx == nil or x > mx then mx = x end
            lv = x
          end
        end
      end
    end
    local d, v = a.d, nil
    if a.k == 'count' then v = n
    elseif a.k == 'sum' then v = psum(p)
    elseif a.k == 'mean' then if n > 0 then v = psum(p) / n else v = d end
    elseif a.k == 'min' then v = mn or d
    elseif a.k == 'max' then v = mx or d
    elseif a.k == 'distinct_count' then v = nd
    elseif a.k == 'last' then if lt ~= nil then v = lv else v = d end
    else if lt ~= nil then v = t - lt else v = d end end
    res[ai] = fmt(v)
  end
  return table.concat(res, ',')
end

local function byTimeSeq(a, b) if a.t ~= b.t then return a.t < b.t end return a.s < b.s end

-- Small entity (no bucket summaries yet): scored from its stored events, like a brute force over
-- at most `small` events; read-only when `apply` is false.
-- One range read from the earliest window start: the rows up to t, and the greatest stored time
-- (nil when none is at or after that start: then it is below t, so t is neither late nor behind).
-- Returns maxT, late, the vector and how many events lie at or after the start.
local function smallLateAndScore(set, E, t)
  local lo = t
  for _, a in ipairs(set.aggs) do
    local s = startBucket(set.wins[a.w], t, set.R) * set.R
    if s < lo then lo = s end
  end
  local raw = redis.call('ZRANGEBYSCORE', E .. ':r', int(lo), '+inf', 'WITHSCORES')
  local rows, maxT = {}, nil
  for i = 1, #raw, 2 do
    local et = tonumber(raw[i + 1])
    if et <= t then
      local seq, vals = string.match(raw[i], '^(%d+)|(.*)$')
      rows[#rows + 1] = { t = et, s = tonumber(seq), v = cjson.decode(vals) }
    end
    maxT = et -- ascending scores: the last is the greatest
  end
  table.sort(rows, byTimeSeq)
  return maxT, maxT ~= nil and t < maxT - set.lat, scoreRows(set, rows, t), #raw / 2
end

-- Turns a small entity into bucket summaries + window accumulators (once, O(its events)).
local function buildBig(set, E, name)
  local R = set.R
  local all = rawEvents(E, '-inf', '+inf')
  table.sort(all, byTimeSeq)
  local last = all[#all]
  local meta = { mt = last.t, lt = last.t, lv = {} }
  local buckets, order, blocks, blockOrder = {}, {}, {}, {}
  for _, e in ipairs(all) do -- sorted by (time, seq): each record's latest is its last event
    local B = floor(e.t / R)
    local K = floor(B / set.F)
    if buckets[B] == nil then buckets[B] = newRecord(set); order[#order + 1] = B end
    if blocks[K] == nil then blocks[K] = newRecord(set); blockOrder[#blockOrder + 1] = K end
    local xs = numericValues(set, e.v)
    addToRecord(set, buckets[B], e.t, xs, e.v)
    addToRecord(set, blocks[K], e.t, xs, e.v)
    if e == last then meta.lv = xs end
  end
  local write, zargs = { 'm', '' }, {}
  for _, B in ipairs(order) do
    write[#write + 1] = 'b' .. int(B)
    write[#write + 1] = mpack(buckets[B])
    zargs[#zargs + 1] = int(B)
    zargs[#zargs + 1] = int(B)
  end
  for _, K in ipairs(blockOrder) do
    write[#write + 1] = 'k' .. int(K)
    write[#write + 1] = mpack(blocks[K])
  end
  for wi, w in ipairs(set.wins) do
    if w.acc then
      local acc = { lo = startBucket(w, meta.mt, R), n = 0, s = {} }
      for _, slot in ipairs(w.sm) do acc.s[slot] = {} end
      for _, B in ipairs(order) do
        if B >= acc.lo then
          local bk = buckets[B]
          acc.n = acc.n + bk.n
          for _, slot in ipairs(w.sm) do for _, x in ipairs(bk.s[slot]) do padd(acc.s[slot], x) end end
          for _, slot in ipairs(w.mn) do redis.call('ZADD', E .. ':n' .. wi .. ':' .. slot, fmt(bk.mn[slot]), int(B)) end
          for _, slot in ipairs(w.mx) do redis.call('ZADD', E .. ':x' .. wi .. ':' .. slot, fmt(bk.mx[slot]), int(B)) end
          for _, slot in ipairs(w.ds) do
            for val, c in pairs(bk.d[slot]) do redis.call('HINCRBY', E .. ':d' .. wi .. ':' .. slot, val, c) end
          end
        end
      end
      write[#write + 1] = 'a' .. wi
      write[#write + 1] = mpack(acc)
    end
  end
  meta.ob = order[1]
  for _, B in ipairs(order) do if B < meta.ob then meta.ob = B end end
  write[2] = mpack(meta)
  redis.call('HSET', E, tunpack(write))
  redis.call('ZADD', E .. ':z', tunpack(zargs))
  bump('sb:' .. name, #order)
end

local function applySmall(set, si, E, ev)
  local t, R, name = ev.t, set.R, req.names[si]
  local maxT, late, out, recent = smallLateAndScore(set, E, t)
  if late then
    late_by_set[name] = (late_by_set[name] or 0) + 1
    return '1:' .. out
  end
  local seq = nextSeq()
  redis.call('ZADD', E .. ':r', int(t), int(seq) .. '|' .. cjson.encode(ev.v[si]))
  bump('sr:' .. name, 1)
  if maxT == nil or t > maxT then maxT = t end
  local nr = redis.call('ZREMRANGEBYSCORE', E .. ':r', '-inf', '(' .. int(floor((maxT - set.ret) / R) * R))
  if nr > 0 then
    evicted_events[name] = (evicted_events[name] or 0) + nr
    bump('sr:' .. name, -nr)
  end
  -- Past `small` events in its widest window (this one included), summaries pay off.
  if recent + 1 > set.small then buildBig(set, E, name) end
  return '0:' .. out
end

-- Moves window w's accumulator forward to start at bucket newLo (whole buckets leave it).
local function evictWindow(E, wi, w, acc, newLo, cache)
  local idx = redis.call('ZRANGEBYSCORE', E .. ':z', int(acc.lo), int(newLo - 1))
  if #idx > 0 then
    local need = {}
    for _, b in ipairs(idx) do if cache[b] == nil then need[#need + 1] = b end end
    if #need > 0 then
      local f = {}
      for i, b in ipairs(need) do f[i] = 'b' .. b end
      local recs = redis.call('HMGET', E, tunpack(f))
      for i, b in ipairs(need) do cache[b] = recs[i] and munpack(recs[i]) or false end
    end
    for _, b in ipairs(idx) do
      local r = cache[b]
      if r then
        acc.n = acc.n - r.n
        for _, slot in ipairs(w.sm) do
          local p = acc.s[slot]
          for _, x in ipairs(r.s[slot]) do padd(p, -x) end
        end
        for _, slot in ipairs(w.ds) do
          local dk = E .. ':d' .. wi .. ':' .. slot
          for val, c in pairs(r.d[slot]) do
            if redis.call('HINCRBY', dk, val, -c) <= 0 then redis.call('HDEL', dk, val) end
          end
        end
      end
    end
    for _, slot in ipairs(w.mn) do redis.call('ZREM', E .. ':n' .. wi .. ':' .. slot, tunpack(idx)) end
    for _, slot in ipairs(w.mx) do redis.call('ZREM', E .. ':x' .. wi .. ':' .. slot, tunpack(idx)) end
  end
  acc.lo = newLo
end

-- Scores (and, unless late, applies) one event for one set. Returns "late:v1,v2,...".
local function applyEvent(set, si, E, ev)
  local t, R = ev.t, set.R
  local B = floor(t / R)
  local Bs = int(B)
  local vals = ev.v[si]
  local Ks = int(floor(B / set.F))
  local fields = { 'm', 'b' .. Bs, 'k' .. Ks }
  for wi, w in ipairs(set.wins) do if w.acc then fields[#fields + 1] = 'a' .. wi end end
  local got = redis.call('HMGET', E, tunpack(fields))
  if not got[1] then return applySmall(set, si, E, ev) end
  local meta = munpack(got[1])
  local late = t < meta.mt - set.lat
  local accs, k = {}, 3
  for wi, w in ipairs(set.wins) do
    if w.acc then
      k = k + 1
      if got[k] then accs[wi] = munpack(got[k]) end
    end
  end
  local out
  if t < meta.mt then
    out = scoreFromBuckets(set, E, t, B)
  else
    -- In event-time order (t >= every applied time): each accumulator holds exactly its window.
    local cache = {}
    for wi, w in ipairs(set.wins) do
      if w.acc then
        local sb = startBucket(w, t, R)
        local acc = accs[wi]
        if acc == nil then
          acc = { lo = sb, n = 0, s = {} }
          for _, slot in ipairs(w.sm) do acc.s[slot] = {} end
          accs[wi] = acc
        elseif sb > acc.lo then
          evictWindow(E, wi, w, acc, sb, cache)
        end
      end
    end
    local res = {}
    for ai, a in ipairs(set.aggs) do
      local w, acc, v = set.wins[a.w], accs[a.w], nil
      if a.k == 'count' then v = acc.n
      elseif a.k == 'sum' then v = psum(acc.s[a.f])
      elseif a.k == 'mean' then if acc.n > 0 then v = psum(acc.s[a.f]) / acc.n else v = a.d end
      elseif a.k == 'min' then
        if acc.n > 0 then v = tonumber(redis.call('ZRANGE', E .. ':n' .. a.w .. ':' .. a.f, 0, 0, 'WITHSCORES')[2]) else v = a.d end
      elseif a.k == 'max' then
        if acc.n > 0 then v = tonumber(redis.call('ZREVRANGE', E .. ':x' .. a.w .. ':' .. a.f, 0, 0, 'WITHSCORES')[2]) else v = a.d end
      elseif a.k == 'distinct_count' then
        if acc.n > 0 then v = redis.call('HLEN', E .. ':d' .. a.w .. ':' .. a.f) else v = 0 end
      else -- last, time_since_prev: the latest applied event, if its bucket is in the window
        if floor(meta.lt / R) >= startBucket(w, t, R) then
          if a.k == 'last' then v = meta.lv[a.f] else v = t - meta.lt end
        else
          v = a.d
        end
      end
      res[ai] = fmt(v)
    end
    out = table.concat(res, ',')
  end
  if late then
    late_by_set[req.names[si]] = (late_by_set[req.names[si]] or 0) + 1
    return '1:' .. out
  end

  -- Apply: bucket summary, window accumulators, meta, the raw event; then trim by event time.
  local name = req.names[si]
  local seq = nextSeq()
  local xs = numericValues(set, vals)
  local bk = got[2] and munpack(got[2]) or nil
  local newBucket = bk == nil
  if newBucket then bk = newRecord(set) end
  addToRecord(set, bk, t, xs, vals)
  local block = got[3] and munpack(got[3]) or newRecord(set)
  addToRecord(set, block, t, xs, vals)
  if t >= meta.lt then meta.lt = t; meta.lv = xs end
  local write = { 'm', '', 'b' .. Bs, mpack(bk), 'k' .. Ks, mpack(block) }
  for wi, w in ipairs(set.wins) do
    local acc = accs[wi]
    if w.acc and acc ~= nil then
      if B >= acc.lo then
        acc.n = acc.n + 1
        for _, slot in ipairs(w.sm) do padd(acc.s[slot], xs[slot]) end
        for _, slot in ipairs(w.mn) do redis.call('ZADD', E .. ':n' .. wi .. ':' .. slot, 'LT', fmt(xs[slot]), Bs) end
        for _, slot in ipairs(w.mx) do redis.call('ZADD', E .. ':x' .. wi .. ':' .. slot, 'GT', fmt(xs[slot]), Bs) end
        for _, slot in ipairs(w.ds) do redis.call('HINCRBY', E .. ':d' .. wi .. ':' .. slot, vals[slot], 1) end
      end
      write[#write + 1] = 'a' .. wi
      write[#write + 1] = mpack(acc)
    end
  end
  if newBucket then
    redis.call('ZADD', E .. ':z', Bs, Bs)
    bump('sb:' .. name, 1)
    if meta.ob == nil or B < meta.ob then meta.ob = B end
  end
  redis.call('ZADD', E .. ':r', int(t), int(seq) .. '|' .. cjson.encode(vals))
  bump('sr:' .. name, 1)
  if t > meta.mt then meta.mt = t end
  local cut = floor((meta.mt - set.ret) / R)
  if meta.ob ~= nil and cut > meta.ob then
    local old = redis.call('ZRANGEBYSCORE', E .. ':z', '-inf', int(cut - 1))
    if #old > 0 then
      local f = {}
      for i, b in ipairs(old) do f[i] = 'b' .. b end
      redis.call('HDEL', E, tunpack(f))
      redis.call('ZREMRANGEBYSCORE', E .. ':z', '-inf', int(cut - 1))
      evicted_buckets[name] = (evicted_buckets[name] or 0) + #old
      bump('sb:' .. name, -#old)
    end
    -- Blocks wholly below the cut go too; the one the cut falls in keeps (unused) stale buckets
    -- until a later cut passes it (meta.ok), since only whole blocks inside a window are read.
    local dropK, seenK = {}, {}
    local function dropBlock(K)
      if not seenK[K] and (K + 1) * set.F <= cut then seenK[K] = true; dropK[#dropK + 1] = 'k' .. int(K) end
    end
    if meta.ok ~= nil then dropBlock(meta.ok) end
    for _, b in ipairs(old) do dropBlock(floor(tonumber(b) / set.F)) end
    if #dropK > 0 then redis.call('HDEL', E, tunpack(dropK)) end
    meta.ok = floor(cut / set.F)
    local nr = redis.call('ZREMRANGEBYSCORE', E .. ':r', '-inf', '(' .. int(cut * R))
    evicted_events[name] = (evicted_events[name] or 0) + nr
    bump('sr:' .. name, -nr)
    local first = redis.call('ZRANGE', E .. ':z', 0, 0)
    meta.ob = tonumber(first[1])
  end
  write[2] = mpack(meta)
  redis.call('HSET', E, tunpack(write))
  return '0:' .. out
end

-- Best-effort score of a replayed event whose stored result was trimmed: from the current state.
local function rescore(set, E, t)
  local m = redis.call('HGET', E, 'm')
  if not m then
    local _, late, out = smallLateAndScore(set, E, t)
    return (late and '1:' or '0:') .. out
  end
  local meta = munpack(m)
  local late = t < meta.mt - set.lat
  return (late and '1:' or '0:') .. scoreFromBuckets(set, E, t, floor(t / set.R))
end

local out, results = {}, {}
local maxOffset = ckpt
local applied, replayed, missed = 0, 0, 0
for i, ev in ipairs(req.ev) do
  local parts = {}
  if ev.o <= ckpt then
    replayed = replayed + ev.c
    local r = redis.call('ZRANGEBYSCORE', KEYS[3], int(ev.o), int(ev.o))
    if #r > 0 then
      out[i] = string.match(r[1], '^%-?%d+|(.*)$')
    else
      missed = missed + 1
      for si, set in ipairs(req.sets) do
        local ki = ev.k[si]
        if ki == 0 then parts[si] = '' else parts[si] = rescore(set, KEYS[ki], ev.t) end
      end
      out[i] = table.concat(parts, ';')
    end
  else
    applied = applied + ev.c
    for si, set in ipairs(req.sets) do
      local ki = ev.k[si]
      if ki == 0 then parts[si] = '' else parts[si] = applyEvent(set, si, KEYS[ki], ev) end
    end
    out[i] = table.concat(parts, ';')
    results[#results + 1] = int(ev.o)
    results[#results + 1] = int(ev.o) .. '|' .. out[i]
    if ev.o > maxOffset then maxOffset = ev.o end
  end
end
for at = 1, #results, 1000 do
  redis.call('ZADD', KEYS[3], tunpack(results, at, math.min(at + 999, #results)))
end
if maxOffset > ckpt then
  redis.call('SET', KEYS[2], int(maxOffset))
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. int(maxOffset - req.keep + 1))
end
if seqNow > seqStart then redis.call('HSET', KEYS[4], 'seq', int(seqNow)) end
bump('applied', applied)
bump('replayed', replayed)
bump('replay_missed', missed)
for name, n in pairs(late_by_set) do bump('late:' .. name, n) end
for field, n in pairs(stats) do redis.call('HINCRBY', KEYS[4], field, n) end
out[#out + 1] = cjson.encode({ late = late_by_set, evb = evicted_buckets, evr = evicted_events, missed = missed })
return out

"""The Lua scripts the Redis stores run, each one atomic command on the server.

Stores register them on their client (``redis.register_script``) and run them by
EVALSHA (``enrichers.redis_io``): the source is sent once per server, not with every
batch. Key names are passed as arguments where a script touches keys it only learns
from the data (trails, an entry's old place): fine on one Redis server, not on Redis
Cluster.
"""

from __future__ import annotations

# HMGET of many fields, in chunks (Lua's ``unpack`` has a limit on its arguments). A
# missing field reads as false.
_HMGET = r"""
local function hmget(key, fields)
  local out = {}
  for s = 1, #fields, 4000 do
    local e = math.min(s + 3999, #fields)
    local got = redis.call('HMGET', key, unpack(fields, s, e))
    for j = 1, e - s + 1 do out[s + j - 1] = got[j] end
  end
  return out
end
"""

# A batch of plate reads. KEYS[1] the hotlist hash, KEYS[2] the vehicles of open
# incidents (same layout: canonical plate -> JSON map of entries); ARGV[1] a JSON array
# of [canonical plate, trail key, read JSON]; ARGV[2..4] keep, ttl, shown. Both hashes
# are read for the whole batch at once; for each read with a hotlist or open-incident
# field, the answer lists [its position, the fields ('' if none), the plate's previous
# reads]. Then the read is pushed onto its trail (trimmed past twice `keep`, so rarely)
# and the trail's expiry set on its first read and refreshed every 8th. The answer is
# one JSON string.
READS = (
    _HMGET
    + r"""
local reads = cjson.decode(ARGV[1])
local keep, ttl, shown = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local plates = {}
for i, item in ipairs(reads) do plates[i] = item[1] end
local hot, linked = hmget(KEYS[1], plates), hmget(KEYS[2], plates)
local out = {}
for i, item in ipairs(reads) do
  local h, v = hot[i], linked[i]
  if h or v then out[#out + 1] = {i, h or '', v or '', redis.call('LRANGE', item[2], 0, shown - 1)} end
  local n = redis.call('LPUSH', item[2], item[3])
  if n > 2 * keep then redis.call('LTRIM', item[2], 0, keep - 1) end
  if n == 1 or n % 8 == 0 then redis.call('EXPIRE', item[2], ttl) end
end
return cjson.encode(out)
"""
)

# A batch of calls' or incidents' round trip: the address and person markers (ARGV[1],
# ARGV[2]: hashes; ARGV[3]: JSON [[address keys], [person ids]]); the entries of each
# log in ARGV[4] (JSON [[log key, last id seen], ...]) after that id, what other
# workers appended since this one last looked; then, unless ARGV[6] is empty, the
# batch appended to log ARGV[5] as field c = ARGV[6], that log trimmed to ids from
# ARGV[7]. Answer: [address markers, person markers, [entries per log], the appended
# entry's id or ''].
LOGS_ROUND = (
    _HMGET
    + r"""
local asked = cjson.decode(ARGV[3])
local am, pm = hmget(ARGV[1], asked[1]), hmget(ARGV[2], asked[2])
local others = {}
for i, log in ipairs(cjson.decode(ARGV[4])) do
  others[i] = redis.call('XRANGE', log[1], '(' .. log[2], '+')
end
local id = ''
if ARGV[6] ~= '' then
  id = redis.call('XADD', ARGV[5], 'MINID', '~', ARGV[7], '*', 'c', ARGV[6])
end
return {am, pm, others, id}
"""
)

# Repeated hits of a rule, folded into one open alert. ARGV[1] a JSON array of
# {k: the group's key, a: the alert id a new group takes, s: the hit's source id,
# w: the window in seconds, t: the event time (epoch s)}. A group stays open while hits
# keep coming within the window of each other, on the event clock (so replays group
# as live streams do). A hit already counted (a redelivery) does not count again.
# Answer: JSON, per hit [alert id, version, hits, first time].
GROUP = r"""
local items = cjson.decode(ARGV[1])
local out = {}
for i, it in ipairs(items) do
  local src = it.k .. ':src'
  local alert_id = redis.call('HGET', it.k, 'alert_id')
  local last = tonumber(redis.call('HGET', it.k, 'last'))
  if alert_id and last and it.t - last > it.w then
    redis.call('DEL', it.k, src)  -- the window passed on the event clock: a new alert
    alert_id = false
  end
  if not alert_id then
    alert_id = it.a
    redis.call('HSET', it.k, 'alert_id', it.a, 'version', 1, 'first', it.t, 'last', it.t)
    redis.call('SADD', src, it.s)
  elseif redis.call('SADD', src, it.s) == 1 then
    redis.call('HINCRBY', it.k, 'version', 1)
    if it.t > last then redis.call('HSET', it.k, 'last', it.t) end
  end
  -- Memory bound on the wall clock; the window itself is kept on the event clock above.
  redis.call('EXPIRE', it.k, 2 * it.w + 60)
  redis.call('EXPIRE', src, 2 * it.w + 60)
  out[i] = {alert_id, tonumber(redis.call('HGET', it.k, 'version')), redis.call('SCARD', src),
            tonumber(redis.call('HGET', it.k, 'first'))}
end
return cjson.encode(out)
"""

# Move entry ARGV[1] to field ARGV[3] of map hash ARGV[2] (or delete it when ARGV[2] is
# empty), keeping the index KEYS[1] (id -> map key \x1f field) right. The map keys are
# passed as arguments because an entry's old place is only known from the index.
UPSERT_ENTRY = r"""
local function remove(mapkey, field, id)
  local cur = redis.call('HGET', mapkey, field)
  if not cur then return end
  local t = cjson.decode(cur)
  t[id] = nil
  if next(t) == nil then redis.call('HDEL', mapkey, field)
  else redis.call('HSET', mapkey, field, cjson.encode(t)) end
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
local sep = old and string.find(old, '\31', 1, true)
if sep then
  remove(string.sub(old, 1, sep - 1), string.sub(old, sep + 1), ARGV[1])
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local cur = redis.call('HGET', ARGV[2], ARGV[3])
local t = {}
if cur then t = cjson.decode(cur) end
t[ARGV[1]] = ARGV[4]
redis.call('HSET', ARGV[2], ARGV[3], cjson.encode(t))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\31' .. ARGV[3])
return 1
"""

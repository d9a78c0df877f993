"""The Lua scripts of the cluster's floods stage (:mod:`.floods`).

Each is one read-modify-write of a throttle window, a digest batch or the
leases of the digests being sent, run by Redis in one step and on Redis's
clock (``TIME``), so that every worker of the group sees the same counts and
the same "now". ``KEYS`` and ``ARGV`` are described above each script.
"""

from __future__ import annotations

__all__ = ["CLOSE", "COLLECT", "LEASES", "THROTTLE"]

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: 1 the throttle key's window (hash), 2 the decisions hash.
# ARGV: 1 the decision's field, 2 limit, 3 window in ms.
# Returns {'new' or 'again', decision}: 'sent:<suppressed>:<since ms>' or 'held:<seen>'.
THROTTLE = (
    """
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return {'again', prior} end
"""
    + _NOW_MS
    + """
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local w = redis.call('HMGET', KEYS[1], 'started', 'seen', 'sent', 'suppressed', 'since')
local started = tonumber(w[1])
local seen = tonumber(w[2]) or 0
local sent = tonumber(w[3]) or 0
local suppressed = tonumber(w[4]) or 0
local since = tonumber(w[5]) or 0
if not started or now - started >= period then
  started = now
  seen = 0
  sent = 0
end
seen = seen + 1
local decision
if sent < limit then
  sent = sent + 1
  decision = 'sent:' .. suppressed .. ':' .. since
  suppressed = 0
  since = 0
else
  suppressed = suppressed + 1
  if since == 0 then since = now end
  decision = 'held:' .. seen
end
redis.call('HSET', KEYS[1], 'started', started, 'seen', seen, 'sent', sent,
           'suppressed', suppressed, 'since', since)
if suppressed > 0 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], period)
end
redis.call('HSET', KEYS[2], ARGV[1], decision)
return {'new', decision}
"""
)

# KEYS: 1 the group's open batch (hash), 2 its listed alerts, 3 the block's due
# groups (zset), 4 the group's last flush time, 5 the decisions hash, 6 batch ids.
# ARGV: 1 the decision's field, 2 group key, 3 group_wait ms, 4 group_interval
# ms, 5 max_alerts, 6 the alert, 7 the group's fields (JSON).
# Returns -1 when the entry was counted before, -2 when it joined an open
# batch, else the milliseconds until the batch it opened is due.
COLLECT = (
    """
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then return -1 end
"""
    + _NOW_MS
    + """
local opened = -2
if redis.call('EXISTS', KEYS[1]) == 0 then
  local send_at = now + tonumber(ARGV[3])
  local flushed = tonumber(redis.call('GET', KEYS[4]))
  if flushed then send_at = math.max(send_at, flushed + tonumber(ARGV[4])) end
  local id = redis.call('INCR', KEYS[6])
  redis.call('HSET', KEYS[1], 'id', id, 'fields', ARGV[7], 'first', now, 'count', 0)
  redis.call('ZADD', KEYS[3], send_at, ARGV[2])
  opened = send_at - now
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last', now)
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[2], ARGV[6])
end
redis.call('HSET', KEYS[5], ARGV[1], 'digest')
return opened
"""
)

# KEYS: 1 the group's open batch, 2 its alerts, 3 due groups, 4 the group's
# last flush time, 5 the block's sending hash, 6 its leases (zset).
# ARGV: 1 group key, 2 group_interval ms, 3 lease ms.
# Returns {'wait', ms}, {'gone'} (another worker closed it) or {'send', id, batch}.
CLOSE = (
    _NOW_MS
    + """
local send_at = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not send_at then return {'gone'} end
if tonumber(send_at) > now then return {'wait', tonumber(send_at) - now} end
redis.call('ZREM', KEYS[3], ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'id', 'fields', 'first', 'last', 'count')
if not b[1] then return {'gone'} end
local batch = cjson.encode({group = ARGV[1], fields = b[2], first = tonumber(b[3]),
  last = tonumber(b[4]), count = tonumber(b[5]),
  alerts = redis.call('LRANGE', KEYS[2], 0, -1)})
redis.call('HSET', KEYS[5], b[1], batch)
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[3]), b[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[4], now, 'PX', math.max(1, tonumber(ARGV[2])))
return {'send', b[1], batch}
"""
)

# KEYS: 1 the block's sending hash, 2 its leases. ARGV: 1 lease ms, then the
# ids this worker is sending. Renews those leases; takes over the expired ones
# of other workers and returns them as id, batch, id, batch, ...
LEASES = (
    _NOW_MS
    + """
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', now + lease, ARGV[i])
end
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 20)) do
  local batch = redis.call('HGET', KEYS[1], id)
  if batch then
    redis.call('ZADD', KEYS[2], now + lease, id)
    table.insert(taken, id)
    table.insert(taken, batch)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return taken
"""
)

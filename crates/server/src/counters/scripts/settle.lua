-- spendgate shared counters, layout 1: settlement of a batch, after its records are in the
-- ledger. Per item: release what this instance holds for the request (never more than it
-- holds: a reclaimed hold releases nothing) and add its usage to the day it started on.
-- A chunk is applied once: its token is kept for a day, and a chunk whose token is
-- there already (a retry after the answer to the first call was lost) changes nothing.
-- KEYS: 1 epoch, 2 this instance's holds, 3 the chunk's token, 4.. the counters of each
--       item's key
-- ARGV: 1 epoch, 2 days of history kept, then per item 7 values: key id, reservation to
--       release, requests to release from in flight, day, cost, requests, last used (ms)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', 86400) then return 1 end
local keep = tonumber(ARGV[2])
local holds = KEYS[2]

local function release(k, field, hold, amount)
  if amount <= 0 then return end
  local n = math.min(amount, tonumber(redis.call('HGET', holds, hold) or '0'))
  if n <= 0 then return end
  if redis.call('HINCRBY', holds, hold, string.format('%d', -n)) <= 0 then redis.call('HDEL', holds, hold) end
  if redis.call('HINCRBY', k, field, string.format('%d', -n)) < 0 then redis.call('HSET', k, field, 0) end
end

for i = 4, #KEYS do
  local k = KEYS[i]
  local a = 3 + (i - 4) * 7
  local id = ARGV[a]
  release(k, 'res', 'r:' .. id, tonumber(ARGV[a + 1]))
  release(k, 'fl', 'f:' .. id, tonumber(ARGV[a + 2]))
  local day, cost, requests = tonumber(ARGV[a + 3]), ARGV[a + 4], tonumber(ARGV[a + 5])
  if requests > 0 then
    redis.call('HINCRBY', k, 's' .. day, cost)
    redis.call('HINCRBY', k, 'r' .. day, requests)
    redis.call('HINCRBY', k, 'ts', cost)
    redis.call('HINCRBY', k, 'tr', requests)
    local last = tonumber(ARGV[a + 6])
    if last > tonumber(redis.call('HGET', k, 'lu') or '0') then redis.call('HSET', k, 'lu', ARGV[a + 6]) end
    -- Forget days that no cycle reaches any more (d0: the oldest day kept).
    local d0 = math.min(tonumber(redis.call('HGET', k, 'd0') or ARGV[a + 3]), day)
    while d0 <= day - keep do
      redis.call('HDEL', k, 's' .. d0, 'r' .. d0)
      d0 = d0 + 1
    end
    redis.call('HSET', k, 'd0', d0)
  end
end
return 1

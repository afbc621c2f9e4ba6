-- spendgate shared counters, layout 1: admission (gateway checks 6 to 8) in one round trip.
-- The same rules as spendgate-core's Meter::admit, on the counters every instance shares.
-- KEYS: 1 epoch, 2 recovering marker, 3 the key's counters, 4 this instance's holds
-- ARGV: 1 epoch, 2 key version, 3 now (us), 4 rpm (0: none), 5 burst, 6 request limit
--       (0: none), 7 its window's first day (-1: total), 8 spend limit in nano-dollars
--       (-1: none), 9 its window's first day (-1: total), 10 policy (strict | lenient),
--       11 worst-case cost, 12 least cost that admits, 13 key id, 14 today (days since epoch)
-- Amounts are integer nano-dollars, exact in Lua numbers up to 2^53 (limits are at most
-- $1,000,000 = 1e15); integers passed to Redis go through string.format('%d').
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'epoch'} end
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {'wait', wait} end
local k = KEYS[3]
local version = tonumber(redis.call('HGET', k, 'v') or '0')
if version > tonumber(ARGV[2]) then return {'stale', version} end
local now, today = tonumber(ARGV[3]), tonumber(ARGV[14])

-- The sum of a per-day field over a cycle window, or the lifetime total.
local function used(first, prefix, total)
  if first < 0 then return tonumber(redis.call('HGET', k, total) or '0') end
  local names = {}
  for d = first, today do names[#names + 1] = prefix .. d end
  local sum = 0
  for _, x in ipairs(redis.call('HMGET', k, unpack(names))) do
    if x then sum = sum + tonumber(x) end
  end
  return sum
end

-- 6: rate limit, GCRA (theoretical arrival time in microseconds).
local new_tat
local rpm = tonumber(ARGV[4])
if rpm > 0 then
  local interval = math.floor(60000000 / rpm)
  local tolerance = interval * (tonumber(ARGV[5]) - 1)
  local tat = math.max(tonumber(redis.call('HGET', k, 'tat') or '0'), now)
  if tat - now > tolerance then return {'rate', math.ceil((tat - now - tolerance) / 1000)} end
  new_tat = tat + interval
end

-- 7: request limit, counting requests in flight.
local in_flight = tonumber(redis.call('HGET', k, 'fl') or '0')
local requests_left = -1
local count = tonumber(ARGV[6])
if count > 0 then
  local n = used(tonumber(ARGV[7]), 'r', 'tr') + in_flight
  if n >= count then return {'requests'} end
  requests_left = count - n - 1
end

-- 8: spend limit, counting reservations.
local reserved, lowered, spend_left = 0, 0, -1
local limit = tonumber(ARGV[8])
if limit >= 0 then
  local spent = used(tonumber(ARGV[9]), 's', 'ts')
  local held = tonumber(redis.call('HGET', k, 'res') or '0')
  if ARGV[10] == 'lenient' then
    if spent >= limit then return {'spend'} end
  else
    local budget = limit - spent - held
    local worst, least = tonumber(ARGV[11]), tonumber(ARGV[12])
    if worst <= budget then
      reserved = worst
    elseif least <= budget then
      -- The rest of the budget; the gateway lowers max tokens to what it affords.
      reserved, lowered = budget, 1
    else
      return {'spend'}
    end
  end
  spend_left = math.max(limit - spent - held - reserved, 0)
end

if new_tat then redis.call('HSET', k, 'tat', string.format('%d', new_tat)) end
local id = ARGV[13]
redis.call('HINCRBY', k, 'fl', 1)
redis.call('HINCRBY', KEYS[4], 'f:' .. id, 1)
if reserved > 0 then
  redis.call('HINCRBY', k, 'res', string.format('%d', reserved))
  redis.call('HINCRBY', KEYS[4], 'r:' .. id, string.format('%d', reserved))
end
return {'ok', reserved, lowered, requests_left, spend_left}

-- spendgate shared counters, layout 1: after a rebuild, an instance puts back what it holds
-- for its requests still in flight (the rebuild knows only the ledger).
-- KEYS: 1 epoch, 2 this instance's holds, 3.. the counters of each key
-- ARGV: 1 epoch, then per key 3 values: key id, reserved (nano-dollars), requests in flight
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #KEYS do
  local a = 2 + (i - 3) * 3
  local id, reserved, in_flight = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  redis.call('HINCRBY', KEYS[i], 'res', reserved)
  redis.call('HINCRBY', KEYS[i], 'fl', in_flight)
  redis.call('HINCRBY', KEYS[2], 'r:' .. id, reserved)
  redis.call('HINCRBY', KEYS[2], 'f:' .. id, in_flight)
end
return 1

-- spendgate shared counters, layout 1: an instance's heartbeat. Renews its lease, and
-- reclaims what dead instances (lease expired) held, so a crashed instance's requests in
-- flight do not hold budget forever. Returns the current epoch ('' when there is none).
-- KEYS: 1 epoch, 2 the set of instances, 3 this instance's lease
-- ARGV: 1 this instance's id, 2 lease time (ms), 3 key prefix
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local prefix, reclaimed = ARGV[3], 0
for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if other ~= ARGV[1] and redis.call('EXISTS', prefix .. ':lease:' .. other) == 0 then
    local holds = prefix .. ':held:' .. other
    local fields = redis.call('HGETALL', holds)
    for j = 1, #fields, 2 do
      local field = string.sub(fields[j], 1, 1) == 'r' and 'res' or 'fl'
      local k = prefix .. ':k:' .. string.sub(fields[j], 3)
      if redis.call('HINCRBY', k, field, string.format('%d', -tonumber(fields[j + 1]))) < 0 then
        redis.call('HSET', k, field, 0)
      end
      reclaimed = reclaimed + 1
    end
    redis.call('DEL', holds)
    redis.call('SREM', KEYS[2], other)
  end
end
return {redis.call('GET', KEYS[1]) or '', reclaimed}

-- spendgate shared counters, layout 1: a key changed (wallet API). Raise the version every
-- admission checks, so no instance uses an older copy, and tell the instances.
-- KEYS: 1 the key's counters; ARGV: 1 its new version, 2 the change channel, 3 key id
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'v') or '0') then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1

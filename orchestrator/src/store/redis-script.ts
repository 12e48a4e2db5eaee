// A Lua script, always sent with EVAL (its text, a few hundred bytes, with every call). Not EVALSHA:
// the store sends commands that depend on each other together without waiting in between (an
// enqueue, then the read of the same queue by the agent's stream, in one write), relying on Redis
// running the commands of one connection in the order sent. A script Redis does not know yet (first
// use, a Redis restart, a failed-over master: cluster replicas do not get scripts) would fail with
// NOSCRIPT under EVALSHA and only run one round trip later, after the commands sent behind it.
// Redis caches the compiled script by its hash, so EVAL costs only the bytes.
import type { RedisCommands } from "./redis-client.js";

export class LuaScript {
  constructor(private readonly source: string) {}

  run(client: RedisCommands, keys: string[], args: string[]): Promise<unknown> {
    return client.eval(this.source, { keys, arguments: args });
  }
}

/** Acquire or renew a lease: KEYS[1] holds the holder ARGV[1] for ARGV[2] ms. 1 when held. */
export const tryLease = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`);

/** Compare-and-set of one string key: writes ARGV[2] only if the key still holds ARGV[1] (its TTL stays). */
export const compareAndSet = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
`);

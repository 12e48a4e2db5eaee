// A Lua script run with EVALSHA, falling back to EVAL when the server does not know it yet
// (first use, or after a Redis restart flushed the script cache).
import { createHash } from "node:crypto";
import type { RedisClient } from "./redis-client.js";

export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(client: RedisClient, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await client.evalSha(this.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return await client.eval(this.source, { keys, arguments: args });
    }
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

/** Compare-and-set of one string key: writes ARGV[2] only if the key still holds ARGV[1]. */
export const compareAndSet = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

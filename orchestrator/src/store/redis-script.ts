// A Lua script run with EVALSHA, falling back to EVAL when the server does not know it yet
// (first use, or after a Redis restart flushed the script cache).
import { createHash } from "node:crypto";
import type { RedisCommands } from "./redis-client.js";

export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(client: RedisCommands, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await client.evalSha(this.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return await client.eval(this.source, { keys, arguments: args });
    }
  }
}

/** Compare-and-set of one string key: writes ARGV[2] only if the key still holds ARGV[1] (its TTL stays). */
export const compareAndSet = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
`);

// K8SDEPLOY_REDIS_URL: one Redis (`redis://`, `rediss://` with TLS) or a Redis Cluster given by
// seed nodes (`redis+cluster://[user:password@]host:port,host:port,…`, `rediss+cluster://` with
// TLS). The cluster client discovers every other node from the seeds (CLUSTER SLOTS), so a few
// seeds are enough; all nodes share the credentials. Parsed here once, for the config check and
// for the store.

export type RedisTarget =
  | { kind: "single"; url: string; tls: boolean }
  | {
      kind: "cluster";
      nodes: { host: string; port: number }[];
      username: string | undefined;
      password: string | undefined;
      tls: boolean;
    };

export class RedisUrlError extends Error {
  override readonly name = "RedisUrlError";
}

const CLUSTER = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]*)\/?$/;

/** Throws RedisUrlError with a message that says what to fix (never echoing a password). */
export function redisTarget(raw: string): RedisTarget {
  const text = raw.trim();
  const cluster = CLUSTER.exec(text);
  if (cluster) {
    const [, scheme, userinfo, hosts = ""] = cluster;
    let username: string | undefined;
    let password: string | undefined;
    if (userinfo !== undefined && userinfo !== "") {
      const colon = userinfo.indexOf(":");
      username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
      password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    }
    const nodes = hosts
      .split(",")
      .map((h) => h.trim())
      .filter((h) => h !== "")
      .map((h) => {
        const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
        const port = Number(m?.[2]);
        if (!m || !(port > 0 && port < 65536)) {
          throw new RedisUrlError(`cluster node "${h}" is not host:port`);
        }
        return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
      });
    if (nodes.length === 0) {
      throw new RedisUrlError(
        "a redis+cluster:// URL needs at least one seed node: redis+cluster://host:port[,host:port…]",
      );
    }
    return { kind: "cluster", nodes, username, password, tls: scheme === "rediss" };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RedisUrlError(
      "is not a URL (expected redis://[user:password@]host[:port][/db], rediss://…, or redis+cluster://host:port,host:port for a Redis Cluster)",
    );
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new RedisUrlError(`scheme "${url.protocol}" is not redis:, rediss:, redis+cluster: or rediss+cluster:`);
  }
  return { kind: "single", url: text, tls: url.protocol === "rediss:" };
}

// Which webhook URLs are accepted, and which addresses the orchestrator will connect to.
//
// SSRF stance: only admins create webhooks, and an admin can already do everything the API
// offers, so the aim is not to keep admins out of the network but to keep a webhook from being
// pointed (by mistake or by a leaked admin token) at what no receiver would be:
//  - only http:// and https:// URLs, without user name or password (credentials belong in the
//    path or the signature), at most 2048 characters;
//  - never link-local addresses (169.254.0.0/16 holds cloud metadata endpoints, fe80::/10),
//    "this host" (0.0.0.0/8, ::), multicast or broadcast;
//  - loopback (127.0.0.0/8, ::1) only with K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK=true (tests, or a
//    receiver beside the orchestrator);
//  - private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) ARE allowed: home-lab receivers
//    live there.
// The address is checked when the connection is made (after DNS), so a name that later resolves
// elsewhere (DNS rebinding) is refused too, and redirects are never followed. The response body
// is never shown to anyone beyond a short error snippet in the delivery log.
import { BlockList, isIP } from "node:net";

export const MAX_URL_LENGTH = 2048;

const never = new BlockList();
never.addSubnet("169.254.0.0", 16, "ipv4");
never.addSubnet("0.0.0.0", 8, "ipv4");
never.addSubnet("224.0.0.0", 4, "ipv4");
never.addAddress("255.255.255.255", "ipv4");
never.addSubnet("fe80::", 10, "ipv6");
never.addAddress("::", "ipv6");
never.addSubnet("ff00::", 8, "ipv6");

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** Why the orchestrator will not connect to `address`, or undefined when it may. */
export function refusedAddress(address: string, allowLoopback: boolean): string | undefined {
  let ip = address.replace(/^\[|\]$/g, "");
  // IPv4-mapped IPv6 (::ffff:169.254.169.254) is the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) ip = mapped[1];
  const family = isIP(ip);
  if (family === 0) return `${address} is not an IP address`;
  const type = family === 4 ? "ipv4" : "ipv6";
  if (never.check(ip, type)) return `${ip} is a link-local, unspecified, multicast or broadcast address`;
  if (!allowLoopback && loopback.check(ip, type)) {
    return `${ip} is a loopback address (set K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK=true to allow it)`;
  }
  return undefined;
}

/** Parses and checks a webhook URL; throws an Error whose message says what is wrong (never echoing the URL). */
export function parseWebhookUrl(raw: string, allowLoopback: boolean): URL {
  const text = raw.trim();
  if (text === "") throw new Error("url: required (https://… or http://…)");
  if (text.length > MAX_URL_LENGTH) throw new Error(`url: at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error("url: not a URL (expected https://host/path)");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`url: scheme ${url.protocol} is not allowed; use https:// (or http:// on a private network)`);
  }
  if (url.username || url.password) throw new Error("url: must not contain a user name or password");
  if (!url.hostname) throw new Error("url: has no host");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host)) {
    const refused = refusedAddress(host, allowLoopback);
    if (refused) throw new Error(`url: ${refused}`);
  } else if (host === "localhost" || host.endsWith(".localhost")) {
    if (!allowLoopback)
      throw new Error("url: localhost is loopback (set K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK=true to allow it)");
  }
  url.hash = "";
  return url;
}

/** What admins are shown of a URL: scheme and host; the path may be a credential (Slack, Discord). */
export function urlPreview(url: URL): string {
  return `${url.protocol}//${url.host}/${url.pathname === "/" && !url.search ? "" : "…"}`;
}

// The pieces of webhook delivery on their own: signatures checked by an independent verifier (the
// `standardwebhooks` package), the three body formats, URL and address rules, sealing, backoff.
import { Deployment, DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { Webhook } from "standardwebhooks";
import { backoffSeconds, retryAfterSeconds } from "./dispatcher.js";
import { renderDiscord, renderGeneric, renderSlack } from "./formats.js";
import { Sealer } from "./sealed-secret.js";
import { newSigningSecret, signatureHeaders } from "./signature.js";
import { parseWebhookUrl, refusedAddress, urlPreview } from "./webhook-url.js";

const deployment = (extra: Partial<Deployment> = {}) =>
  Deployment.fromPartial({
    id: "dep_0001",
    agentId: "agt_1",
    namespace: "shop",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload: "web",
    image: "ghcr.io/acme/web:1.2.3",
    state: DeploymentState.DEPLOYMENT_STATE_FAILED,
    failure: { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: "pull <b>failed</b> @everyone <!channel>" },
    message: "pull failed",
    createdAt: new Date("2026-12-01T10:00:00Z"),
    updatedAt: new Date("2026-12-01T10:00:42Z"),
    origin: {
      repository: "acme/web",
      sha: "0123456789abcdef",
      ref: "",
      actor: "",
      runUrl: "https://github.com/acme/web/actions/runs/1",
      workflow: "",
    },
    ...extra,
  });
const ctx = { agent: { id: "agt_1", name: "homelab" }, githubServerUrl: "https://github.com", now: new Date() };

test("signatures verify with the standardwebhooks library; a changed body, id or secret does not", (t) => {
  const secret = newSigningSecret();
  t.regex(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const body = renderGeneric(deployment(), ctx);
  const now = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders(secret, "whd_1", now, body);
  t.regex(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]{43}=$/);
  const verifier = new Webhook(secret);
  t.deepEqual(verifier.verify(body, headers), JSON.parse(body));
  t.throws(() => verifier.verify(`${body} `, headers));
  t.throws(() => verifier.verify(body, { ...headers, "webhook-id": "whd_2" }));
  t.throws(() => new Webhook(newSigningSecret()).verify(body, headers));
  // Replay protection: a timestamp older than the library's 5-minute tolerance is refused.
  const old = signatureHeaders(secret, "whd_1", now - 600, body);
  t.throws(() => verifier.verify(body, old), { message: /too old/i });
});

test("generic body: type, timestamp and the deployment in the contract's JSON form", (t) => {
  const body = JSON.parse(renderGeneric(deployment(), ctx));
  t.is(body.type, "deployment.finished");
  t.is(body.data.deployment.state, "DEPLOYMENT_STATE_FAILED");
  t.is(body.data.deployment.failure.reason, "FAILURE_REASON_IMAGE_PULL");
  t.deepEqual(body.data.agent, { id: "agt_1", name: "homelab" });
  t.true(Deployment.fromJSON(body.data.deployment).createdAt instanceof Date);
});

test("slack body: text and blocks, agent text escaped, only GitHub run links linked", (t) => {
  const body = JSON.parse(renderSlack(deployment(), ctx));
  t.regex(body.text, /Deployment failed: shop\/deployment\/web → ghcr\.io\/acme\/web:1\.2\.3/);
  t.is(body.blocks[0].type, "section");
  t.is(body.blocks[0].text.type, "mrkdwn");
  const section: string = body.blocks[0].text.text;
  t.true(section.includes("image_pull: pull &lt;b&gt;failed&lt;/b&gt; @everyone &lt;!channel&gt;"));
  t.false(section.includes("<!channel>"));
  t.is(body.blocks[1].type, "context");
  t.true(body.blocks[1].elements[0].text.includes("<https://github.com/acme/web/actions/runs/1|acme/web@0123456>"));
  const phishing = deployment({
    origin: { repository: "acme/web", sha: "", ref: "", actor: "", runUrl: "https://evil.example/x", workflow: "" },
  });
  t.false(renderSlack(phishing, ctx).includes("evil.example"));
});

test("discord body: one embed within Discord's limits, mentions disabled", (t) => {
  const body = JSON.parse(renderDiscord(deployment({ message: "x".repeat(10_000) }), ctx));
  t.deepEqual(body.allowed_mentions, { parse: [] });
  const [embed] = body.embeds;
  t.true(embed.title.length <= 256);
  t.true(embed.description.length <= 4096);
  t.true(embed.fields.length <= 25 && embed.fields.every((f: { value: string }) => f.value.length <= 1024));
  t.is(embed.color, 0xd64545);
  t.is(embed.url, "https://github.com/acme/web/actions/runs/1");
  t.true(embed.description.includes("@\u200beveryone"));
  const ok = JSON.parse(
    renderDiscord(deployment({ state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED, failure: undefined }), ctx),
  );
  t.is(ok.embeds[0].color, 0x2e9e5b);
  t.regex(ok.embeds[0].title, /succeeded: web/);
});

test("webhook URLs: http(s) only, no credentials, no link-local or (by default) loopback addresses", (t) => {
  t.is(
    parseWebhookUrl("https://hooks.slack.com/services/T0/B0/xyz#frag", false).toString(),
    "https://hooks.slack.com/services/T0/B0/xyz",
  );
  t.is(urlPreview(new URL("https://hooks.slack.com/services/T0/B0/xyz")), "https://hooks.slack.com/…");
  t.is(urlPreview(new URL("http://192.168.1.5:8080/")), "http://192.168.1.5:8080/");
  t.notThrows(() => parseWebhookUrl("http://192.168.1.5:8080/hook", false), "private ranges are allowed");
  t.notThrows(() => parseWebhookUrl("http://10.0.0.1/hook", false));
  for (const [url, why] of [
    ["ftp://example.com/x", /scheme ftp: is not allowed/],
    ["file:///etc/passwd", /scheme file: is not allowed/],
    ["javascript:alert(1)", /scheme javascript: is not allowed/],
    ["https://user:pw@example.com/", /user name or password/],
    ["http://169.254.169.254/latest/meta-data", /link-local/],
    ["http://[fe80::1]/", /link-local/],
    ["http://[::ffff:169.254.169.254]/", /link-local/],
    ["http://0.0.0.0:80/", /unspecified/],
    ["http://127.0.0.1:9/", /loopback.*K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK/],
    ["http://[::1]:9/", /loopback/],
    ["http://localhost:9/", /localhost is loopback/],
    ["not a url", /not a URL/],
    [`https://example.com/${"a".repeat(2100)}`, /at most 2048/],
  ] as const) {
    t.throws(() => parseWebhookUrl(url, false), { message: why }, url);
  }
  t.notThrows(() => parseWebhookUrl("http://127.0.0.1:9/", true));
  t.regex(refusedAddress("169.254.169.254", true) ?? "", /link-local/, "never, even with loopback allowed");
  t.is(refusedAddress("::ffff:127.0.0.1", true), undefined);
  t.truthy(refusedAddress("::ffff:127.0.0.1", false));
});

test("sealing: plain without a key, AES-GCM with one; moved or re-keyed values are refused", (t) => {
  const plain = new Sealer();
  t.is(plain.seal("https://x/y", "whk_1:url"), "plain:https://x/y");
  t.is(plain.open("plain:https://x/y", "whk_1:url"), "https://x/y");
  const key = Buffer.alloc(32, 7);
  const sealer = new Sealer(key);
  const sealed = sealer.seal("whsec_abc", "whk_1:secret");
  t.false(sealed.includes("whsec_abc"));
  t.is(sealer.open(sealed, "whk_1:secret"), "whsec_abc");
  t.throws(() => sealer.open(sealed, "whk_2:secret"), { message: /does not decrypt/ });
  t.throws(() => new Sealer(Buffer.alloc(32, 8)).open(sealed, "whk_1:secret"), {
    message: /another K8SDEPLOY_WEBHOOK_KEY/,
  });
  t.throws(() => plain.open(sealed, "whk_1:secret"), { message: /not set/ });
});

test("backoff grows three-fold to an hour with jitter; Retry-After is read in seconds or as a date", (t) => {
  t.is(
    backoffSeconds(10, 1, () => 0.5),
    10,
  );
  t.is(
    backoffSeconds(10, 2, () => 0.5),
    30,
  );
  t.is(
    backoffSeconds(10, 3, () => 0.5),
    90,
  );
  t.is(
    backoffSeconds(10, 20, () => 0.5),
    3600,
  );
  t.is(
    backoffSeconds(10, 1, () => 0),
    8,
  );
  t.is(
    backoffSeconds(10, 1, () => 1),
    12,
  );
  t.is(retryAfterSeconds("120"), 120);
  t.is(retryAfterSeconds("999999"), 3600);
  t.true((retryAfterSeconds(new Date(Date.now() + 60_000).toUTCString()) ?? 0) > 55);
  t.is(retryAfterSeconds("soon"), undefined);
  t.is(retryAfterSeconds(undefined), undefined);
});

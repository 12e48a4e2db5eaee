import { readFileSync } from "node:fs";
import test from "ava";
import { CONFIG_VARIABLES, ConfigError, describeConfig, loadConfig } from "./config.js";

const TOKEN = "kda_Zm9vYmFyYmF6cXV4MTIzNDU2";
const base = { K8SDEPLOY_SERVER: "https://k8sdeploy.example.com", K8SDEPLOY_AGENT_TOKEN: TOKEN };

function problems(env: Record<string, string>, deps = {}): string[] {
  try {
    loadConfig(env, deps);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

test("minimal configuration and defaults", (t) => {
  const c = loadConfig(base, { hostname: () => "laptop" });
  t.deepEqual(
    c.servers.map((s) => [s.url, s.target, s.tls]),
    [["https://k8sdeploy.example.com:443", "k8sdeploy.example.com:443", true]],
  );
  t.is(c.token, TOKEN);
  t.is(c.tokenSource, "K8SDEPLOY_AGENT_TOKEN");
  t.false(c.autoUpdate);
  t.is(c.agentDeployment, "k8sdeploy-agent");
  t.is(c.podNamespace, "k8sdeploy");
  t.is(c.podName, undefined);
  t.is(c.instance, "laptop");
  t.is(c.logLevel, "info");
  t.is(c.ca, undefined);
  t.is(c.agentIdHint, undefined);
  t.is(c.agentVersion, JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version);
});

test("every variable set", (t) => {
  const c = loadConfig(
    {
      K8SDEPLOY_SERVER:
        " http://orchestrator.k8sdeploy.svc:8080 , https://[2001:db8::1]:9443,https://b.example.com:8443 ",
      K8SDEPLOY_AGENT_TOKEN_FILE: "/var/run/secrets/k8sdeploy/token",
      K8SDEPLOY_CA_FILE: "/etc/k8sdeploy/ca.pem",
      K8SDEPLOY_AUTO_UPDATE: "TRUE",
      K8SDEPLOY_AGENT_DEPLOYMENT: "my-agent",
      POD_NAMESPACE: "ops",
      POD_NAME: "my-agent-5f7c-xyz",
      K8SDEPLOY_LOG_LEVEL: "debug",
      KUBECONFIG: "/home/me/.kube/config",
    },
    {
      readFile: (p: string) =>
        Buffer.from(
          p.endsWith("token") ? `${TOKEN}\n` : "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        ),
    },
  );
  t.deepEqual(
    c.servers.map((s) => [s.target, s.tls]),
    [
      ["orchestrator.k8sdeploy.svc:8080", false],
      ["[2001:db8::1]:9443", true],
      ["b.example.com:8443", true],
    ],
  );
  t.is(c.token, TOKEN); // trailing newline of the file removed
  t.is(c.tokenSource, "K8SDEPLOY_AGENT_TOKEN_FILE");
  t.true(c.ca?.toString().includes("BEGIN CERTIFICATE"));
  t.true(c.autoUpdate);
  t.is(c.agentDeployment, "my-agent");
  t.is(c.podNamespace, "ops");
  t.is(c.instance, "my-agent-5f7c-xyz");
  t.is(c.logLevel, "debug");
  t.is(c.kubeconfig, "/home/me/.kube/config");
});

test("the agent id (not secret) is read from an orchestrator-issued token", (t) => {
  const token = `kda_agt_0k3x9_${"A".repeat(40)}-_9`;
  const c = loadConfig({ ...base, K8SDEPLOY_AGENT_TOKEN: token });
  t.is(c.agentIdHint, "agt_0k3x9");
  t.is(describeConfig(c).agentId, "agt_0k3x9");
  t.false(JSON.stringify(describeConfig(c)).includes("AAAA"));
});

test("empty variables count as unset", (t) => {
  const c = loadConfig({ ...base, K8SDEPLOY_AUTO_UPDATE: "", POD_NAMESPACE: " ", K8SDEPLOY_LOG_LEVEL: "" });
  t.false(c.autoUpdate);
  t.is(c.podNamespace, "k8sdeploy");
  t.is(c.logLevel, "info");
});

test("missing required variables are all reported, each naming its variable", (t) => {
  const p = problems({});
  t.is(p.length, 2);
  t.regex(p.join("\n"), /K8SDEPLOY_SERVER is required/);
  t.regex(p.join("\n"), /K8SDEPLOY_AGENT_TOKEN is required/);
  const e = t.throws(() => loadConfig({}), { instanceOf: ConfigError });
  t.regex(e!.message, /^invalid agent configuration:\n {2}- /);
});

test("server URLs are validated", (t) => {
  const bad = {
    "ftp://x.example.com": /must use http:\/\/ \(plaintext\) or https:\/\/ \(TLS\)/,
    "not a url": /is not a URL/,
    "https://user:pw@x.example.com": /must not contain credentials/,
    "https://x.example.com/api": /must not have a path/,
    "https://x.example.com?a=1": /must not have a path/,
    "https://ok.example.com,http://": /is not a URL|has no host/,
    " , ": /K8SDEPLOY_SERVER lists no URL/,
  };
  for (const [value, pattern] of Object.entries(bad)) {
    const p = problems({ ...base, K8SDEPLOY_SERVER: value });
    t.is(p.length, 1, value);
    t.regex(p[0]!, /^K8SDEPLOY_SERVER /, value);
    t.regex(p[0]!, pattern, value);
  }
  // credentials in a bad URL are not echoed back
  t.false(problems({ ...base, K8SDEPLOY_SERVER: "https://user:pw@x.example.com" })[0]!.includes("pw"));
});

test("the token must look like an agent token, and is never echoed", (t) => {
  const cases = ["dk_0123456789abcdef", "kda_abc", "kda_has space inside", "Bearer kda_0123456789", "kda_0123456789;x"];
  for (const token of cases) {
    const p = problems({ ...base, K8SDEPLOY_AGENT_TOKEN: token });
    t.is(p.length, 1, token);
    t.regex(p[0]!, /^K8SDEPLOY_AGENT_TOKEN /);
    t.false(p[0]!.includes(token), token);
    t.false(p[0]!.includes(token.slice(4, 12)), token);
  }
  t.regex(problems({ ...base, K8SDEPLOY_AGENT_TOKEN: "dk_0123456789abcdef" })[0]!, /must start with "kda_"/);
});

test("token file problems name K8SDEPLOY_AGENT_TOKEN_FILE", (t) => {
  const env = { K8SDEPLOY_SERVER: base.K8SDEPLOY_SERVER, K8SDEPLOY_AGENT_TOKEN_FILE: "/nope" };
  const missing = problems(env, {
    readFile: () => {
      throw Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
    },
  });
  t.deepEqual(missing, ["K8SDEPLOY_AGENT_TOKEN_FILE cannot read /nope: ENOENT"]);
  t.deepEqual(problems(env, { readFile: () => Buffer.from("\n") }), ["K8SDEPLOY_AGENT_TOKEN_FILE /nope is empty"]);
  const wrong = problems(env, { readFile: () => Buffer.from("password123456") });
  t.is(wrong.length, 1);
  t.regex(wrong[0]!, /^K8SDEPLOY_AGENT_TOKEN_FILE must start with "kda_"/);
  t.false(wrong[0]!.includes("password123456"));
  t.regex(problems({ ...env, K8SDEPLOY_AGENT_TOKEN: TOKEN }).join(), /both set; set only one/);
});

test("other variables are validated", (t) => {
  t.regex(problems({ ...base, K8SDEPLOY_AUTO_UPDATE: "yes" })[0]!, /^K8SDEPLOY_AUTO_UPDATE must be true or false/);
  t.regex(
    problems({ ...base, K8SDEPLOY_LOG_LEVEL: "verbose" })[0]!,
    /^K8SDEPLOY_LOG_LEVEL must be one of fatal, error/,
  );
  t.regex(problems({ ...base, POD_NAMESPACE: "Bad_NS" })[0]!, /^POD_NAMESPACE must be a Kubernetes namespace name/);
  t.regex(problems({ ...base, K8SDEPLOY_AGENT_DEPLOYMENT: "-x" })[0]!, /^K8SDEPLOY_AGENT_DEPLOYMENT must be/);
  t.regex(
    problems({ ...base, K8SDEPLOY_CA_FILE: "/ca.pem" }, { readFile: () => Buffer.from("junk") })[0]!,
    /^K8SDEPLOY_CA_FILE \/ca.pem holds no PEM certificate/,
  );
  const pem = Buffer.from("-----BEGIN CERTIFICATE-----\n");
  t.regex(
    problems({ ...base, K8SDEPLOY_SERVER: "http://a:1", K8SDEPLOY_CA_FILE: "/ca.pem" }, { readFile: () => pem })[0]!,
    /no K8SDEPLOY_SERVER URL uses https/,
  );
});

test("image pre-flight settings: defaults and validation", (t) => {
  const d = loadConfig(base);
  t.is(d.preflight, "lenient");
  t.is(d.preflightTimeoutSeconds, 10);
  t.is(d.registrySecret, undefined);
  t.deepEqual(d.insecureRegistries, []);
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const c = loadConfig(
    {
      ...base,
      K8SDEPLOY_PREFLIGHT: "strict",
      K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS: "5",
      K8SDEPLOY_REGISTRY_SECRET: "k8sdeploy-registry",
      K8SDEPLOY_REGISTRY_CA_FILE: "/ca.pem",
      K8SDEPLOY_INSECURE_REGISTRIES: "Registry.Lan:5000, 10.0.0.5",
    },
    { readFile: () => Buffer.from(pem) },
  );
  t.like(c, { preflight: "strict", preflightTimeoutSeconds: 5, registrySecret: "k8sdeploy-registry", registryCa: pem });
  t.deepEqual(c.insecureRegistries, ["registry.lan:5000", "10.0.0.5"]);
  t.regex(
    problems({ ...base, K8SDEPLOY_PREFLIGHT: "loose" })[0]!,
    /^K8SDEPLOY_PREFLIGHT must be one of lenient, strict, off/,
  );
  t.regex(
    problems({ ...base, K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS: "0" })[0]!,
    /^K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS must be/,
  );
  t.regex(problems({ ...base, K8SDEPLOY_REGISTRY_SECRET: "Bad_Name" })[0]!, /^K8SDEPLOY_REGISTRY_SECRET must be/);
  t.regex(
    problems({ ...base, K8SDEPLOY_INSECURE_REGISTRIES: "http://r.lan" })[0]!,
    /^K8SDEPLOY_INSECURE_REGISTRIES "http:\/\/r.lan" is not a registry host\[:port\]/,
  );
  t.regex(
    problems({ ...base, K8SDEPLOY_REGISTRY_CA_FILE: "/x.pem" }, { readFile: () => Buffer.from("junk") })[0]!,
    /^K8SDEPLOY_REGISTRY_CA_FILE \/x.pem holds no PEM certificate/,
  );
});

test("proxy variables: upper case is mirrored for grpc-js, only http:// proxies", (t) => {
  const c = loadConfig({ ...base, HTTPS_PROXY: "http://user:secret@proxy.corp:3128", NO_PROXY: ".svc,.cluster.local" });
  t.deepEqual(c.grpcProxyEnv, {
    grpc_proxy: "http://user:secret@proxy.corp:3128",
    no_grpc_proxy: ".svc,.cluster.local",
  });
  t.is(describeConfig(c).proxy, "http://proxy.corp:3128");
  t.deepEqual(loadConfig({ ...base, grpc_proxy: "http://p:1" }).grpcProxyEnv, {});
  t.regex(
    problems({ ...base, https_proxy: "https://p:1" })[0]!,
    /^https_proxy must be an http:\/\/host:port proxy URL/,
  );
});

test("describeConfig never contains the token", (t) => {
  const c = loadConfig(base);
  const text = JSON.stringify(describeConfig(c));
  t.false(text.includes(TOKEN));
  t.regex(text, /k8sdeploy\.example\.com/);
});

test("CONFIG.md documents every variable of the table", (t) => {
  const doc = readFileSync(new URL("../CONFIG.md", import.meta.url), "utf8");
  for (const v of CONFIG_VARIABLES) {
    for (const name of v.name.split(" / ")) t.true(doc.includes(`\`${name}\``), name);
    if (v.default !== undefined) t.true(doc.includes(v.default), `${v.name} default`);
  }
});

test("K8SDEPLOY_HEALTH_LISTEN: off by default, host:port or [v6]:port, a clear error otherwise", (t) => {
  t.is(loadConfig(base).healthListen, undefined);
  t.deepEqual(loadConfig({ ...base, K8SDEPLOY_HEALTH_LISTEN: "0.0.0.0:8081" }).healthListen, {
    host: "0.0.0.0",
    port: 8081,
  });
  t.deepEqual(loadConfig({ ...base, K8SDEPLOY_HEALTH_LISTEN: "[::]:8081" }).healthListen, { host: "::", port: 8081 });
  for (const bad of ["8081", "host:", "h:99999", "http://h:1"]) {
    const p = problems({ ...base, K8SDEPLOY_HEALTH_LISTEN: bad });
    t.is(p.length, 1, bad);
    t.regex(p[0] ?? "", /^K8SDEPLOY_HEALTH_LISTEN must be host:port/);
  }
});

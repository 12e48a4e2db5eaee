// The HTTP port under hostile input, against a real `k8sdeploy serve`: a brotli bomb and a 64 MiB
// body are refused without the orchestrator's memory growing (RSS read from /proc), a request
// without credentials is refused before its body is read, oversize is resource_exhausted, JSON with
// unknown fields or enum names is invalid_argument naming the field, and binary bodies that are
// not protobuf are invalid_argument instead of internal/500.
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as zlib from "node:zlib";
import test from "ava";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";

const ADMIN_TOKEN = `admin-${"b0mb".repeat(10)}`;
const MiB = 1024 * 1024;
let orch: Orchestrator;
let bomb: Buffer;
let gzBomb: Buffer;

/** 64 MiB of zeros, gzipped (about 64 KiB: deflate's ratio is at most ~1000:1). */
function gzipBomb(): Buffer {
  return zlib.gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
}

/** 256 MiB of zeros, brotli-compressed to a couple of hundred bytes. */
function brotliBomb(): Buffer {
  return zlib.brotliCompressSync(Buffer.alloc(256 * MiB), {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 4,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: 256 * MiB,
    },
  });
}

function procStatusKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Resets the peak RSS (VmHWM) of our own child: `echo 5 > /proc/PID/clear_refs`. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

interface Reply {
  status: number;
  body: string;
  raw: Buffer;
}

/** POSTs `body` (a Buffer, or a size of zeros streamed in 1 MiB chunks without content-length). */
function post(path: string, headers: Record<string, string>, body: Buffer | number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, orch.httpUrl);
    let answered = false;
    const req = http.request(url, { method: "POST", headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, body: raw.toString("utf8"), raw });
      });
    });
    // The server may answer, stop reading and close before the whole body is sent: then the write
    // fails (EPIPE, ECONNRESET) after the answer arrived, and the answer is what counts.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    if (typeof body !== "number") {
      req.end(body);
      return;
    }
    const chunk = Buffer.alloc(MiB);
    let left = body;
    const pump = () => {
      while (left > 0) {
        left -= chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

const deployPath = "/k8sdeploy.v1.DeployService/Deploy";
const listPath = "/k8sdeploy.v1.AdminService/ListAgents";
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const codeOf = (r: Reply) => (JSON.parse(r.body) as { code?: string }).code;
const messageOf = (r: Reply) => (JSON.parse(r.body) as { message?: string }).message ?? "";

test.before(async () => {
  bomb = brotliBomb();
  gzBomb = gzipBomb();
  orch = await startOrchestrator({ env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN } });
});

test.after.always(async () => {
  await orch?.stop();
});

test.serial("a brotli bomb and a 64 MiB body are refused and RSS grows by less than 20 MiB", async (t) => {
  const pid = orch.process.pid ?? 0;
  t.true(bomb.length < 1024, `bomb is ${bomb.length} bytes`);
  // Warm up the code paths once so that lazily loaded code does not count as growth.
  await post(listPath, { "content-type": "application/json", ...auth }, Buffer.from("{}"));
  const rssBefore = procStatusKiB(pid, "VmRSS");
  const peakReset = resetPeak(pid);
  const peakBefore = procStatusKiB(pid, "VmHWM");

  const json = { "content-type": "application/json" };
  const brotli = { "content-type": "application/json", "content-encoding": "br" };
  const gzip = { "content-type": "application/json", "content-encoding": "gzip" };
  const step = async <T>(name: string, p: Promise<T>): Promise<T> => {
    const r = await p;
    t.log(
      `${name}: RSS ${(procStatusKiB(pid, "VmRSS") / 1024).toFixed(1)} MiB, peak ${(procStatusKiB(pid, "VmHWM") / 1024).toFixed(1)} MiB`,
    );
    return r;
  };
  const replies = {
    bombWithoutCredentials: await step("bomb, no credentials", post(deployPath, brotli, bomb)),
    bombWithToken: await step("bomb, admin token", post(deployPath, { ...brotli, ...auth }, bomb)),
    bigWithoutCredentials: await step("64 MiB, no credentials", post(deployPath, json, 64 * MiB)),
    bigWithoutCredentialsLength: await step(
      "64 MiB with content-length, no credentials",
      post(deployPath, { ...json, "content-length": String(64 * MiB) }, 64 * MiB),
    ),
    bigWithToken: await step("64 MiB, admin token", post(deployPath, { ...json, ...auth }, 64 * MiB)),
    // What the issue names ends here; more bombs at once follow, bounded on their own below.
    afterIssueCases: procStatusKiB(pid, "VmRSS"),
    gzipBombs: await step(
      "8 gzip bombs at once, admin token",
      Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(() => post(deployPath, { ...gzip, ...auth }, gzBomb))),
    ),
    brotliBombs: await step(
      "4 brotli bombs at once, admin token",
      Promise.all([1, 2, 3, 4].map(() => post(deployPath, { ...brotli, ...auth }, bomb))),
    ),
  };
  const rssAfter = procStatusKiB(pid, "VmRSS");
  const peakAfter = procStatusKiB(pid, "VmHWM");
  t.log(
    `bomb ${bomb.length} B; RSS ${(rssBefore / 1024).toFixed(1)} → ${(rssAfter / 1024).toFixed(1)} MiB, ` +
      `peak ${(peakBefore / 1024).toFixed(1)} → ${(peakAfter / 1024).toFixed(1)} MiB (peak reset: ${peakReset})`,
  );

  // Refused before its body is read: connect-node checks the encoding first.
  t.is(codeOf(replies.bombWithoutCredentials), "unimplemented");
  t.is(replies.bigWithoutCredentials.status, 401);
  t.is(codeOf(replies.bigWithoutCredentials), "unauthenticated");
  t.is(codeOf(replies.bigWithoutCredentialsLength), "unauthenticated");
  for (const r of [replies.bigWithToken, ...replies.gzipBombs]) {
    t.is(r.status, 429, r.body);
    t.is(codeOf(r), "resource_exhausted");
    t.regex(messageOf(r), /1048576/);
  }
  // brotli is not accepted at all (its decoder's window alone can be 16 MiB).
  for (const r of [replies.bombWithoutCredentials, replies.bombWithToken, ...replies.brotliBombs]) {
    t.is(codeOf(r), "unimplemented", r.body);
    t.regex(messageOf(r), /br/);
  }
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const issueGrowth = replies.afterIssueCases - rssBefore;
  t.true(issueGrowth < 20 * 1024, `the bombs and 64 MiB bodies: RSS grew by ${mib(issueGrowth)}`);
  const burstGrowth = rssAfter - replies.afterIssueCases;
  t.true(burstGrowth < 20 * 1024, `8 gzip + 4 brotli bombs at once: RSS grew by ${mib(burstGrowth)}`);
  t.true(peakAfter - peakBefore < 40 * 1024, `peak RSS grew by ${mib(peakAfter - peakBefore)}`);
  // And it still serves.
  const ok = await post(listPath, { "content-type": "application/json", ...auth }, Buffer.from("{}"));
  t.is(ok.status, 200);
});

test.serial("a malformed Authorization is refused as unauthenticated before the body is read", async (t) => {
  for (const authorization of ["", "Basic abc", "Bearer", "Bearer a b", ADMIN_TOKEN]) {
    const r = await post(deployPath, { "content-type": "application/json", authorization }, Buffer.from("{not json"));
    t.is(r.status, 401, authorization);
    t.is(codeOf(r), "unauthenticated");
    t.regex(messageOf(r), /Authorization: Bearer/);
    t.false(r.body.includes(ADMIN_TOKEN));
  }
});

test.serial("Connect JSON: unknown fields and enum names are invalid_argument naming the field", async (t) => {
  const deploy = (body: unknown) =>
    post(deployPath, { "content-type": "application/json", ...auth }, Buffer.from(JSON.stringify(body)));
  const base = { namespace: "shop", workload: "web", image: "nginx:1.27" };

  const kind = await deploy({ ...base, kind: "StatefulSet" });
  t.is(kind.status, 400);
  t.is(codeOf(kind), "invalid_argument");
  t.regex(messageOf(kind), /^kind: "StatefulSet" is not a WorkloadKind value; use one of .*WORKLOAD_KIND_STATEFUL_SET/);

  const typo = await deploy({ ...base, rollbackOnFailre: true });
  t.is(codeOf(typo), "invalid_argument");
  t.regex(messageOf(typo), /"rollbackOnFailre" is unknown/);

  const typo2 = await deploy({ ...base, timeoutSecond: 30 });
  t.is(codeOf(typo2), "invalid_argument");
  t.regex(messageOf(typo2), /"timeoutSecond" is unknown/);

  const nested = await deploy({ ...base, origin: { repo: "acme/web" } });
  t.is(codeOf(nested), "invalid_argument");
  t.regex(messageOf(nested), /"repo" is unknown/);

  // The proto spellings still work (the agent is unknown, so NOT_FOUND-ish refusal, not a parse error).
  const good = await deploy({ ...base, kind: "WORKLOAD_KIND_STATEFUL_SET", rollbackOnFailure: true });
  t.not(codeOf(good), "invalid_argument", good.body);
});

test.serial("Connect binary: bytes that are not protobuf are invalid_argument, not internal", async (t) => {
  for (const bytes of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x7f]), Buffer.from([0x0f])]) {
    const r = await post(deployPath, { "content-type": "application/proto", ...auth }, bytes);
    t.is(r.status, 400, r.body);
    t.is(codeOf(r), "invalid_argument");
    t.regex(messageOf(r), /not a valid k8sdeploy\.v1\.DeployRequest protobuf message/);
  }
  // Server streaming (enveloped): the error arrives in the end-stream message.
  const head = Buffer.alloc(5);
  head.writeUInt32BE(3, 1);
  const r = await post(
    "/k8sdeploy.v1.DeployService/WatchDeployment",
    { "content-type": "application/connect+proto", "connect-protocol-version": "1", ...auth },
    Buffer.concat([head, Buffer.from([0xff, 0xff, 0xff])]),
  );
  const raw = r.raw;
  t.is(r.status, 200);
  t.is(raw.readUInt8(0), 0x02);
  const end = JSON.parse(raw.subarray(5).toString("utf8")) as { error?: { code?: string; message?: string } };
  t.is(end.error?.code, "invalid_argument");
  t.regex(end.error?.message ?? "", /not a valid k8sdeploy\.v1\.WatchDeploymentRequest protobuf message/);
});

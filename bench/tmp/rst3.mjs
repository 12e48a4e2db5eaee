import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { http2ServersOf } from "../../orchestrator/dist/server/ping-policy.js";
import { raiseSessionLimits } from "../../orchestrator/dist/server/http2-session-limits.js";

const server = new grpc.Server({ "grpc.max_concurrent_streams": 100 });
const port = await new Promise((r) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => r(p)),
);
if (process.argv[2] === "raise") raiseSessionLimits(http2ServersOf(server));
const srv = http2ServersOf(server)[0];
const key = Object.getOwnPropertySymbols(srv).find((s) => s.description === "options");
console.log("options", JSON.stringify(srv[key]));
const client = http2.connect(`http://127.0.0.1:${port}`);
let goaway = null;
client.on("goaway", (code) => {
  goaway = code;
});
client.on("error", () => {});
for (let i = 0; i < 1500 && !client.destroyed; i++) {
  const req = client.request({ ":path": "/x.Y/Z", ":method": "POST", "content-type": "application/grpc" });
  req.on("error", () => {});
  req.close(http2.constants.NGHTTP2_CANCEL);
  if (i % 100 === 0) await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setTimeout(r, 500));
console.log(process.argv[2], "goaway code:", goaway);
process.exit(0);

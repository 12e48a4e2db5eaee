import http2 from "node:http2";

const server = http2.createServer({});
const key = Object.getOwnPropertySymbols(server).find((s) => s.description === "options");

server.on("stream", (stream) => {
  stream.on("error", () => {});
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const client = http2.connect(`http://127.0.0.1:${server.address().port}`);
let goaway = null;
client.on("goaway", (code) => {
  goaway = code;
});
client.on("error", () => {});
for (let i = 0; i < 1500 && !client.destroyed; i++) {
  const req = client.request({ ":path": "/" });
  req.on("error", () => {});
  req.close(http2.constants.NGHTTP2_CANCEL);
  if (i % 100 === 0) await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setTimeout(r, 500));
console.log("mutated options: goaway code:", goaway);
process.exit(0);

import http2 from "node:http2";

for (const opts of [
  {},
  { streamResetBurst: 2, streamResetRate: 1 },
  { streamResetBurst: 100000, streamResetRate: 100000 },
]) {
  const server = http2.createServer(opts);
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    setTimeout(() => {
      if (!stream.destroyed) stream.respond({ ":status": 200 });
      if (!stream.destroyed) stream.end("ok");
    }, 50);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const client = http2.connect(`http://127.0.0.1:${server.address().port}`);
  let goaway = null;
  client.on("goaway", (code) => {
    goaway = code;
  });
  client.on("error", () => {});
  for (let i = 0; i < 1500; i++) {
    const req = client.request({ ":path": "/" });
    req.on("error", () => {});
    req.close(http2.constants.NGHTTP2_CANCEL);
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify(opts), "goaway code:", goaway, "client destroyed:", client.destroyed);
  client.destroy();
  server.close();
}
process.exit(0);

// The reference proxy: a raw byte pass-through on node:http. It pipes each request to the upstream and the
// response back, bytes only (no parsing, no buffering), over a keep-alive agent. Whatever a gateway costs
// on top of this is the price of what it does with the bytes.
//
//   node --import tsx bench/passthrough.ts --upstream http://127.0.0.1:PORT [--port 0] [--host 127.0.0.1]
//
// Prints one JSON line `{"event":"listening","port":N}` on stdout once it listens. GET /health answers
// locally. Self-contained (node: imports only) so that run.ts can run it as plain JavaScript.

import http from "node:http";
import type { AddressInfo } from "node:net";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const upstreamArg = arg("--upstream");
if (!upstreamArg) {
  process.stderr.write("passthrough: --upstream <url> is required\n");
  process.exit(2);
}
const upstream = new URL(upstreamArg);
const host = arg("--host") ?? "127.0.0.1";
const port = Number(arg("--port") ?? "0");

const agent = new http.Agent({
  keepAlive: true,
  keepAliveMsecs: 30_000,
  maxSockets: 512,
  maxFreeSockets: 512,
});

// Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not the message's.
const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP.has(k)) out[k] = v;
  }
  return out;
}

const server = http.createServer({ keepAliveTimeout: 120_000, noDelay: true }, (req, res) => {
  if (req.method === "GET" && req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json", "content-length": "15" });
    res.end('{"status":"ok"}');
    return;
  }
  const headers = endToEnd(req.headers);
  headers.host = upstream.host;
  const proxied = http.request(
    {
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers));
      upRes.pipe(res);
      upRes.on("error", () => res.destroy());
    },
  );
  proxied.on("socket", (s) => s.setNoDelay(true));
  proxied.on("error", (err) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({ error: { message: `passthrough: upstream error: ${err.message}` } });
    res.writeHead(502, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  res.on("close", () => {
    if (!res.writableFinished) proxied.destroy();
  });
  req.pipe(proxied);
});
server.headersTimeout = 60_000;
server.requestTimeout = 300_000;

server.listen(port, host, () => {
  const addr = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ event: "listening", port: addr.port })}\n`);
});

function shutdown(): void {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.on("disconnect", shutdown);
// Never outlive the harness: exit when orphaned, and after --max-lifetime seconds in any case.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) shutdown();
}, 1000).unref();
setTimeout(shutdown, Number(arg("--max-lifetime") ?? "3600") * 1000).unref();

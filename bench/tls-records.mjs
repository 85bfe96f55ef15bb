#!/usr/bin/env node
// TLS records per response on the agent side: a TCP relay between the load generator and each proxy reads the
// proxy's bytes after its CONNECT answer as TLS records and counts them. A small response written as one record
// costs one encryption, one write and one read; the terminator of a chunked body sent on its own costs all three again.
// Usage: node bench/tls-records.mjs [--requests N]   (npm run bench:records)
import net from 'node:net';
import { load } from './lib/load.mjs';
import { startBare, startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--requests') + 1]) || 2000;
const { env, dir, tls, up, common } = await benchWorld('records');

/** A relay in front of `proxyUrl` that counts, per TLS content type, the records the proxy sends after CONNECT. */
async function countingRelay(proxyUrl) {
  const target = new URL(proxyUrl);
  const counts = { records: 0, appData: 0, bytes: 0 };
  const server = net.createServer((client) => {
    const proxy = net.connect(Number(target.port), target.hostname);
    client.pipe(proxy);
    let head = Buffer.alloc(0);
    let inTls = false;
    let pending = Buffer.alloc(0);
    proxy.on('data', (chunk) => {
      client.write(chunk);
      if (!inTls) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        inTls = true;
        chunk = head.subarray(end + 4);
      }
      pending = Buffer.concat([pending, chunk]);
      // Each record: type (1 byte), version (2), length (2), then the payload.
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        counts.records++;
        if (pending[0] === 23) counts.appData++;
        counts.bytes += 5 + pending.readUInt16BE(3);
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
    });
    const end = () => { client.destroy(); proxy.destroy(); };
    client.on('error', end).on('close', end);
    proxy.on('error', end).on('close', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, server };
}

const ks = await startKeyswap({ ...common, auditDir: dir });
const bare = await startBare({ ...common, tls });
const rows = [];
for (const [framing, query] of [['chunked', ''], ['fixed length', '?fixed']]) {
  for (const [kind, p] of [['bare MITM', bare], ['keyswap', ks]]) {
    const relay = await countingRelay(p.url);
    // One connection, so the handshake's few records are spread over all N responses.
    const r = await load({ kind, url: relay.url, target: `https://localhost:${up.port}`, caPem: p.caPem, injects: true }, env, { total: N, concurrency: 1, timeLimitMs: 60_000, query });
    rows.push({ framing, kind, requests: r.requests, bad: r.bad, ...relay.counts });
    relay.server.close();
  }
}
let md = `TLS records the proxy sent the agent per response, ${N} keep-alive requests on one connection (POST, a small JSON answer, chunked as in every other scenario, or of fixed length). Command: \`node bench/tls-records.mjs\`.\n\n`;
md += '| answer | path | records per response | application-data records per response | bytes per response | bad |\n|---|---|---|---|---|---|\n';
for (const r of rows) md += `| ${r.framing} | ${r.kind} | ${(r.records / r.requests).toFixed(2)} | ${(r.appData / r.requests).toFixed(2)} | ${(r.bytes / r.requests).toFixed(0)} | ${r.bad} |\n`;
console.log(md);
for (const c of [ks.child, bare.child]) c.kill('SIGTERM');
up.server.closeAllConnections();
up.server.close();
process.exit(rows.some((r) => r.bad > 0) ? 1 : 0);

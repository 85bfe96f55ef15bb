#!/usr/bin/env node
// What 1,000 idle agent connections cost each proxy in memory: each one CONNECTs, completes TLS, sends one request
// with the placeholder (so keyswap has decrypted and decided on it) and then stays open, idle. RSS is read from /proc
// before and after (garbage collected in between by waiting), for keyswap and the bare Node MITM.
// Usage: node bench/idle.mjs [--connections N]   (npm run bench:idle)
import net from 'node:net';
import tls from 'node:tls';
import { startBare, startKeyswap } from './lib/proxies.mjs';
import { rssMb } from './lib/rss.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--connections') + 1]) || 1000;
const { env, dir, tls: material, up, common } = await benchWorld('idle');
const ks = await startKeyswap({ ...common, auditDir: dir });
const bare = await startBare({ ...common, tls: material });

/** One agent connection through the proxy, after one answered request; resolves with its TLS socket, left open. */
async function idleConnection(p) {
  const target = `localhost:${up.port}`;
  const proxy = new URL(p.url);
  const raw = net.connect(Number(proxy.port), proxy.hostname);
  await new Promise((resolve, reject) => { raw.once('connect', resolve); raw.once('error', reject); });
  raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await new Promise((resolve) => raw.once('data', resolve));
  const socket = tls.connect({ socket: raw, servername: 'localhost', ca: p.caPem });
  await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
  socket.write(`GET /v1/echo HTTP/1.1\r\nHost: ${target}\r\nAuthorization: Bearer ${env.placeholder}\r\n\r\n`);
  let got = '';
  await new Promise((resolve) => {
    const onData = (c) => { got += c; if (/\r\n0\r\n\r\n$|"ok":true\}$/.test(got)) { socket.off('data', onData); resolve(); } };
    socket.on('data', onData);
  });
  if (!got.includes('"sawSecret":true')) throw new Error('the request through the proxy did not carry the secret');
  return socket;
}

const rows = [];
for (const [kind, p, pid] of [['keyswap', ks, ks.child.pid], ['bare MITM', bare, bare.child.pid]]) {
  const warm = [];
  for (let i = 0; i < 20; i++) warm.push(await idleConnection(p));
  for (const s of warm) s.destroy();
  await new Promise((r) => setTimeout(r, 2000));
  const before = rssMb(pid);
  const open = [];
  for (let i = 0; i < N; i += 50) open.push(...await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => idleConnection(p))));
  await new Promise((r) => setTimeout(r, 3000));
  const after = rssMb(pid);
  rows.push(`| ${kind} | ${before.toFixed(1)} | ${after.toFixed(1)} | ${(((after - before) * 1024) / N).toFixed(1)} |`);
  for (const s of open) s.destroy();
}
console.log(`Idle run ${new Date().toISOString()}, Node ${process.version}: ${N} agent connections, each decrypted with one request answered, then idle. Command: \`node bench/idle.mjs\`.\n`);
console.log('| proxy | RSS before, MB | RSS with the connections open, MB | KB per idle connection |\n|---|---|---|---|');
console.log(rows.join('\n'));
for (const c of [ks.child, bare.child]) c.kill('SIGTERM');
up.server.closeAllConnections();
up.server.close();

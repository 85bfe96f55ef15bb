#!/usr/bin/env node
// A body without a content-length (HTTP/2 streams, gRPC, chunked HTTP/1.1, a body keyswap substitutes into) against
// the same body with one, at concurrency 1: the classic Nagle and delayed-ACK stall shows as ~40 ms here, so the
// medians say at once whether keyswap inherits it. Each path through keyswap and, for HTTP/1.1, the bare MITM.
// Usage: node bench/stall.mjs [--quick] [--baseline CHECKOUT]   (npm run bench:stall)
// --baseline adds another built checkout of keyswap to the same run (the build before a change).
import path from 'node:path';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { ProxyAgent, request } from 'undici';
import { h2Session, startProtocolUpstreams } from './lib/protocols.mjs';
import { startBare, startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const BASELINE = argv.includes('--baseline') ? path.resolve(argv[argv.indexOf('--baseline') + 1]) : null;
const N = QUICK ? 60 : 300;
const { env, dir, tls, up, common } = await benchWorld('stall');
const protocols = await startProtocolUpstreams({ ...tls, ...env });
const BODY_PH = 'body-PLACEHOLDER-BENCH-0123456789abcdef';
/** keyswap with the header binding alone, and one that also substitutes a body placeholder there (a body site). */
const start = (repo) => Promise.all([
  startKeyswap({ ...common, auditDir: dir, extraPorts: [protocols.h2Port], ...(repo ? { repo } : {}) }),
  startKeyswap({
    ...common, auditDir: dir, ...(repo ? { repo } : {}),
    secrets: `  BODY_KEY:\n    placeholder: "${BODY_PH}"\n    inject: { type: body }\n    bindings: [ { host: localhost, port: ${up.port} } ]\n`,
    env: { KEYSWAP_SECRET_BODY_KEY: 'body-secret-0123456789abcdef' },
  }),
]);
const [ks, ksBody] = await start(null);
const [baseKs, baseBody] = BASELINE === null ? [null, null] : await start(BASELINE);
const bare = await startBare({ ...common, tls });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const HALF = '{"pad":"' + 'x'.repeat(200);
const REST = '"}';

/** HTTP/1.1 through a proxy: a body with a length, chunked (two writes a tick apart), or carrying the body placeholder. */
async function h1(p, kind) {
  const dispatcher = new ProxyAgent({ uri: p.url, requestTls: { ca: p.caPem } });
  const lat = [];
  let bad = 0;
  for (let i = 0; i < N + 10; i++) {
    const body = kind === 'chunked'
      ? Readable.from((async function* () { yield HALF; await new Promise((r) => setImmediate(r)); yield REST; })())
      : kind === 'substituted' ? `{"key":"${BODY_PH}","pad":"${'x'.repeat(180)}"}` : HALF + REST;
    const t = performance.now();
    const res = await request(`https://localhost:${up.port}/v1/echo?fixed`, { dispatcher, method: 'POST', body, headers: { authorization: `Bearer ${env.placeholder}`, 'content-type': 'application/json' } });
    const text = await res.body.text();
    if (i >= 10) lat.push(performance.now() - t);
    if (!JSON.parse(text).ok) bad++;
  }
  await dispatcher.close();
  return { p50: median(lat), bad };
}

/** HTTP/2 over one connection through keyswap: a body with content-length, or without (two writes a tick apart). */
async function h2(p, withLength) {
  const session = await h2Session(p, protocols.h2Port);
  session.on('error', () => {});
  const lat = [];
  let bad = 0;
  const body = HALF + REST;
  for (let i = 0; i < N + 10; i++) {
    const t = performance.now();
    const text = await new Promise((resolve) => {
      const s = session.request({ ':method': 'POST', ':path': '/v1/echo', authorization: `Bearer ${env.placeholder}`, ...(withLength ? { 'content-length': String(Buffer.byteLength(body)) } : {}) });
      let got = '';
      s.on('data', (c) => { got += c; });
      s.on('error', () => resolve('{}'));
      s.on('end', () => resolve(got));
      if (withLength) s.end(body);
      else {
        s.write(HALF);
        setImmediate(() => s.end(REST));
      }
    });
    if (i >= 10) lat.push(performance.now() - t);
    if (!JSON.parse(text).sawSecret) bad++;
  }
  session.close();
  return { p50: median(lat), bad };
}

const rows = [];
const b = { url: bare.url, caPem: bare.caPem, kind: 'bare' };
const pair = async (name, withOne, without) => {
  const a = await withOne();
  const c = await without();
  rows.push(`| ${name} | ${a.p50.toFixed(2)} | ${c.p50.toFixed(2)} | ${(c.p50 - a.p50 >= 0 ? '+' : '')}${(c.p50 - a.p50).toFixed(2)} | ${a.bad + c.bad} |`);
  return a.bad + c.bad;
};
let bad = 0;
bad += await pair('HTTP/1.1, bare MITM: length vs chunked', () => h1(b, 'length'), () => h1(b, 'chunked'));
for (const [name, plain, body] of [['keyswap', ks, ksBody], ...(baseKs ? [['keyswap, baseline', baseKs, baseBody]] : [])]) {
  const k = { url: plain.url, caPem: plain.caPem };
  bad += await pair(`HTTP/1.1, ${name}: length vs chunked`, () => h1(k, 'length'), () => h1(k, 'chunked'));
  bad += await pair(`HTTP/1.1, ${name}: header binding vs a body site substituted`, () => h1(k, 'length'), () => h1({ url: body.url, caPem: body.caPem }, 'substituted'));
  bad += await pair(`HTTP/2, ${name}: content-length vs none`, () => h2(k, true), () => h2(k, false));
}
console.log(`Stall run ${new Date().toISOString()}, Node ${process.version}, concurrency 1, ${N} requests each, medians. Command: \`node bench/stall.mjs${QUICK ? ' --quick' : ''}${BASELINE ? ' --baseline <checkout>' : ''}\`.\n`);
console.log('| path | p50 ms, with a length (or header) | p50 ms, without (or body) | difference | bad |\n|---|---|---|---|---|');
console.log(rows.join('\n'));
for (const c of [ks, ksBody, baseKs, baseBody, bare]) c?.child.kill('SIGTERM');
protocols.close();
up.server.closeAllConnections();
up.server.close();
process.exit(bad > 0 ? 1 : 0);

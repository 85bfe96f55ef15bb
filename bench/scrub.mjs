#!/usr/bin/env node
// Response scrubbing throughput (scrub/): what matching every secret character by character, in every spelling,
// costs per byte of response. Three secrets (a bearer key, a JSON-hostile one, one with a space), bodies streamed in
// 16 KiB chunks through Scrubber.inline(). Reports MB/s for a plain JSON body, an escape-heavy one (\u00XX, &#NN;,
// %XX on every third character), one with echoes to redact, and µs per small (1 KiB) body.
// Also an SSE token stream and random binary bytes (1 MiB each). Usage: npm run build && node bench/scrub.mjs [--mb N]
// --before CHECKOUT: the same bodies through a built checkout from before scrubbing by characters (e.g. bdc0ff3),
// whose scrubber matched whole-value spellings (src/proxy/scrubber.ts then).
const argv = process.argv.slice(2);
const MB = Number(argv[argv.indexOf('--mb') + 1]) || 32;
const BEFORE = argv.includes('--before') ? argv[argv.indexOf('--before') + 1] : null;
const secrets = ['sk-live-4f9a1c2e7b3d5a6f8e0c1b2a3d4e5f60', 'p@ss+w0rd/"quoted"\\x', 'two words and more 1234'];
const targets = secrets.map((v, i) => ({ secretName: `S${i}`, placeholder: `PH-${i}-PLACEHOLDER`, values: [v], mode: 'redact' }));
let scrubber;
if (BEFORE === null) {
  const { compileTargets, Scrubber } = await import('../dist/scrub/index.js');
  scrubber = new Scrubber(compileTargets(targets));
} else {
  const old = await import(new URL(`file://${BEFORE.replace(/\/$/, '')}/dist/proxy/scrubber.js`).href);
  scrubber = new old.Scrubber(old.scrubNeedles(targets.map((t) => ({ ...t, forms: old.echoForms(t.values[0]) }))));
}

function body(bytes, spell) {
  const unit = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const text = `{"id":${i},"name":"item ${i}","note":"${spell(`the quick brown fox ${i} jumps over the lazy dog`)}"},`;
    unit.push(text);
    n += text.length;
  }
  return Buffer.from(`[${unit.join('')}{}]`);
}
const plain = (s) => s;
const escaped = (s) => [...s].map((c, k) => (k % 3 === 0 ? [`\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`, `&#${c.charCodeAt(0)};`, `%${c.charCodeAt(0).toString(16)}`][k % 9 / 3 | 0] : c)).join('');
const echoing = (s) => `${s} ${secrets[0]} ${JSON.stringify(secrets[1]).slice(1, -1)}`;

function run(buf, rounds) {
  const t0 = process.hrtime.bigint();
  let out = 0;
  for (let r = 0; r < rounds; r++) {
    const s = scrubber.inline();
    for (let o = 0; o < buf.length; o += 16_384) out += s.push(buf.subarray(o, o + 16_384)).length;
    out += s.end().length;
  }
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, out };
}

const results = {};
for (const [name, spell] of [['plain JSON', plain], ['escape-heavy JSON', escaped], ['JSON with echoes to redact', echoing]]) {
  const buf = body(1 << 20, spell);
  run(buf, 2); // warm-up
  const { ms } = run(buf, MB);
  results[name] = `${((buf.length * MB) / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}
// An SSE stream of small JSON events (a model's token stream), and binary bytes (an image, a protobuf): 1 MiB each.
const sse = Buffer.from(Array.from({ length: 8000 }, (_, i) => `data: {"id":${i},"delta":{"content":"token ${i} of the answer"}}\n\n`).join('').slice(0, 1 << 20));
const binary = Buffer.alloc(1 << 20);
for (let i = 0, x = 7; i < binary.length; i++) binary[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
for (const [name, buf] of [['SSE token stream', sse], ['binary', binary]]) {
  run(buf, 2);
  const { ms } = run(buf, MB);
  results[name] = `${((buf.length * MB) / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}
const small = body(1024, plain);
run(small, 2000);
const N = 20_000;
const { ms } = run(small, N);
results['1 KiB body'] = `${((ms * 1000) / N).toFixed(1)} µs each`;
for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(28)} ${v}`);

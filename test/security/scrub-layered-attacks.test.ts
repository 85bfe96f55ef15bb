import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEncoder } from '../helpers/encoder-process.js';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempWorld } from '../helpers/temp-world.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Outside review of issue #32 (the decoder-matcher), kept as regression tests. A real HTTPS upstream whose routes hand the credential keyswap
 * injected to a real language library, twice-layered as common stacks do: a login redirect that URL-encodes the
 * request URL (Django's redirect_to_login), PHP json_encode of a JSON log line, a Go html/template fragment
 * returned inside Go encoding/json. Each layer alone is a spelling keyswap reads; the stack of two is not.
 * Every assertion checks that the agent cannot recover the real value by decoding what it received.
 */

const VALUE = `wJalrXUtnFEMI/K7MDENG+bPxRfiCY${Date.now().toString(36)}`;
const QPH = 'qk-PLACEHOLDER-REVIEW-0123456789abcdef';
const HPH = 'hk-PLACEHOLDER-REVIEW-0123456789abcdef';
const HOST = 'review.example.test';

const GO_SOURCE = `package main

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"os"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	var b bytes.Buffer
	template.Must(template.New("p").Parse("<p>Key: {{.}}</p>")).Execute(&b, string(in))
	out, _ := json.Marshal(map[string]string{"html": b.String()})
	os.Stdout.Write(out)
}
`;

let goBinary = '';
const world = makeTempWorld('review');
/** What the upstream sent for each route (proof of what the agent had to decode). */
const written = new Map<string, string>();

const run = runEncoder;

let h: Harness;
let server: https.Server;

beforeAll(async () => {
  const dir = path.join(world.dir, 'go');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'main.go'), GO_SOURCE);
  const cache = path.join(tmpdir(), 'keyswap-encoders-go');
  const built = spawnSync('go', ['build', '-o', path.join(dir, 'enc'), 'main.go'], {
    cwd: dir, encoding: 'utf8', timeout: 170_000,
    env: { PATH: process.env.PATH ?? '', HOME: cache, GOCACHE: path.join(cache, 'build'), GOPATH: path.join(cache, 'gopath'), GOTOOLCHAIN: 'local', GOPROXY: 'off', GO111MODULE: 'off' },
  });
  if (built.status !== 0) throw new Error(`go build failed: ${built.stderr}`);
  goBinary = path.join(dir, 'enc');

  const testCa = createTestCa();
  const leaf = testCa.issue([HOST]);
  server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const url = req.url ?? '';
    const auth = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const done = (name: string, status: number, headers: Record<string, string>, body: Buffer): void => {
      written.set(name, `${JSON.stringify(headers)} ${body.toString('utf8')}`);
      res.writeHead(status, { ...headers, 'content-length': String(body.length) }).end(body);
    };
    const fail = (err: Error): void => { res.writeHead(500).end(err.message); };
    if (url.startsWith('/app/items?')) {
      // Not signed in: Django's redirect_to_login — next= is the full path, URL-encoded with safe="/".
      run(['python3', '-c', 'import sys, urllib.parse; sys.stdout.write("/accounts/login/?" + urllib.parse.urlencode({"next": sys.stdin.read()}, safe="/"))'], url).then((loc) => {
        const location = loc.toString('utf8');
        done('redirect', 302, { location, 'content-type': 'text/html' }, Buffer.from(`<a href="${location}">Sign in</a>`));
      }, fail);
      return;
    }
    if (url === '/app/php-log') {
      // A PHP app returns the JSON log line it wrote for the request (json_encode of a json_encode).
      run(['php', '-r', '$k = stream_get_contents(STDIN); $line = json_encode(["event" => "auth", "key" => $k]); echo json_encode(["last_log" => $line]);'], auth).then((b) => done('php', 200, { 'content-type': 'application/json' }, b), fail);
      return;
    }
    if (url === '/app/go-fragment') {
      // A Go handler renders an HTML fragment with html/template and returns it in JSON (htmx/turbo style).
      run([goBinary], auth).then((b) => done('go', 200, { 'content-type': 'application/json' }, b), fail);
      return;
    }
    if (url === '/app/grpcweb-split' || url === '/app/grpcweb-flush') {
      // gRPC-Web text (base64): a server-streaming echo in two messages, each base64'd on its own as the
      // gRPC-Web spec allows; or one message whose base64 was flushed in two padded pieces (a Go grpc-web wrapper
      // flushes its base64 encoder, padding included, on every http.Flusher call).
      const frame = (flag: number, payload: Buffer): Buffer => {
        const head = Buffer.from([flag, 0, 0, 0, 0]);
        head.writeUInt32BE(payload.length, 1);
        return Buffer.concat([head, payload]);
      };
      const half = Math.floor(auth.length / 2);
      const trailer = frame(0x80, Buffer.from('grpc-status:0\r\n'));
      let body: string;
      if (url === '/app/grpcweb-split') {
        body = [frame(0, Buffer.from(`\n\x20${auth.slice(0, half)}`, 'latin1')), frame(0, Buffer.from(`\n\x20${auth.slice(half)}`, 'latin1')), trailer].map((f) => f.toString('base64')).join('');
      } else {
        const one = frame(0, Buffer.from(`\n\x40${auth}`, 'latin1'));
        const cut = 5 + 2 + half + ((5 + 2 + half) % 3 === 0 ? 1 : 0); // not a multiple of 3: the first piece ends padded
        body = [one.subarray(0, cut), one.subarray(cut), trailer].map((f) => f.toString('base64')).join('');
      }
      done(url, 200, { 'content-type': 'application/grpc-web-text+proto' }, Buffer.from(body));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  h = await startHarness({
    testCa,
    resolve: { [`${HOST}:443`]: `127.0.0.1:${(server.address() as AddressInfo).port}` },
    secretValues: { QKEY: VALUE, HKEY: VALUE },
    secrets: `
  QKEY:
    placeholder: "${QPH}"
    inject: { type: query, param: key }
    bindings: [{ host: ${HOST}, methods: [GET], paths: ["/app/**"] }]
  HKEY:
    placeholder: "${HPH}"
    inject: { header: Authorization, format: "Bearer {HKEY}" }
    bindings: [{ host: ${HOST}, methods: [GET, POST], paths: ["/app/**"] }]
`,
  });
}, 180_000);

afterAll(async () => {
  await h?.close();
  await new Promise((r) => server?.close(r));
  world.remove();
});

/** Everything the agent can get out of `text` by undoing one or two layers of common escaping. */
function recoverable(text: string): string[] {
  const layers = [
    (s: string) => s,
    (s: string) => { try { return decodeURIComponent(s); } catch { return s; } },
    (s: string) => s.replace(/\\u([0-9a-fA-F]{4})/g, (_m, x: string) => String.fromCharCode(parseInt(x, 16))).replace(/\\(.)/g, '$1'),
    (s: string) => s.replace(/&#(\d+);/g, (_m, d: string) => String.fromCodePoint(Number(d))).replace(/&amp;/g, '&'),
  ];
  const out: string[] = [];
  for (const a of layers) for (const b of layers) for (const c of layers) out.push(c(b(a(text))));
  return out;
}

describe('two layers of ordinary escaping: the agent decodes nothing of the secret', () => {
  it('login redirect: Location and body carry the query secret URL-encoded twice (%252F, %252B)', async () => {
    const r = await curlVia(h, `https://${HOST}/app/items?key=${QPH}&page=2`);
    expect(r.status, r.stderr).toBe(302);
    const seen = `${r.headers.location ?? ''}\n${r.body}`;
    console.log('agent received Location:', r.headers.location);
    expect(recoverable(seen).some((t) => t.includes(VALUE))).toBe(false);
  });

  it('PHP json_encode of a JSON log line: the header secret as \\\\\\/', async () => {
    const r = await curlVia(h, `https://${HOST}/app/php-log`, { headers: [`Authorization: Bearer ${HPH}`] });
    expect(r.status, r.stderr).toBe(200);
    console.log('agent received:', r.body);
    expect(recoverable(r.body).some((t) => t.includes(VALUE))).toBe(false);
  });

  it('Go html/template fragment inside Go encoding/json: + as \\u0026#43;', async () => {
    const r = await curlVia(h, `https://${HOST}/app/go-fragment`, { headers: [`Authorization: Bearer ${HPH}`] });
    expect(r.status, r.stderr).toBe(200);
    console.log('agent received:', r.body);
    expect(recoverable(r.body).some((t) => t.includes(VALUE))).toBe(false);
  });
});

/** The agent's gRPC-Web text reading: each base64 piece decoded on its own, message payloads joined. */
function grpcWebTextPayloads(body: string): string {
  const pieces = body.match(/[A-Za-z0-9+/]+={0,2}/g) ?? [];
  const bytes = Buffer.concat(pieces.map((p) => Buffer.from(p, 'base64')));
  let out = '';
  for (let i = 0; i + 5 <= bytes.length;) {
    const len = bytes.readUInt32BE(i + 1);
    if (((bytes[i] as number) & 0x80) === 0) out += bytes.subarray(i + 5 + 2, i + 5 + len).toString('latin1');
    i += 5 + len;
  }
  return out;
}

describe('gRPC-Web text: an echo split across messages, or across base64 pieces, is blocked like gRPC’s', () => {
  it.each(['/app/grpcweb-split', '/app/grpcweb-flush'])('%s: the agent cannot join the pieces into the value', async (route) => {
    const r = await curlVia(h, `https://${HOST}${route}`, { headers: [`Authorization: Bearer ${HPH}`] });
    expect(r.status, r.stderr).toBe(200);
    console.log('agent received:', r.headers['content-type'], r.body, '→', JSON.stringify(grpcWebTextPayloads(r.body)));
    expect(grpcWebTextPayloads(r.body)).not.toContain(VALUE);
  });
});

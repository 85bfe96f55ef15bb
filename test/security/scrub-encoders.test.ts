import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { leaksIn } from '../helpers/secret-forms.js';
import { makeTempWorld } from '../helpers/temp-world.js';
import { runEncoder } from '../helpers/encoder-process.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Issue #32, with real encoders as the upstream: the request reaches a real HTTPS server on 127.0.0.1 carrying
 * the real secret (injected by keyswap), which hands the Authorization value to the language's own library —
 * Go's encoding/json and html/template, Python's json and html.escape, Ruby's JSON and ERB::Util, PHP's
 * json_encode and htmlspecialchars, Perl's JSON::PP and HTML::Entities, Node's JSON and encodeURIComponent —
 * and answers with what the library wrote. The secret holds + / = < > & ' " and a non-ASCII character, so every
 * library escapes something. What reaches the agent, over HTTP/1.1 and HTTP/2, must be the placeholder, with a
 * response_scrubbed record.
 */

const VALUE = `wJalr+XUtn/FEMI=K7<MD>ENG&bPx'RfiCY"é-${Date.now().toString(36)}`;
const PH = 'sk-PLACEHOLDER-ENCODERS-0123456789abcdef';
const HOST = 'encoders.example.test';

const GO_SOURCE = `package main

import (
	"encoding/json"
	"html/template"
	"io"
	"os"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	v := string(in)
	if os.Args[1] == "json" {
		out, _ := json.Marshal(map[string]string{"you_sent": v})
		os.Stdout.Write(out)
		return
	}
	t := template.Must(template.New("p").Parse("<p>Invalid key: {{.}}</p>"))
	t.Execute(os.Stdout, v)
}
`;

interface Encoder { readonly name: string; readonly contentType: string; readonly argv: () => readonly string[] }

let goBinary = '';
const ENCODERS: readonly Encoder[] = [
  { name: 'go-encoding-json', contentType: 'application/json', argv: () => [goBinary, 'json'] },
  { name: 'go-html-template', contentType: 'text/html', argv: () => [goBinary, 'html'] },
  { name: 'python-json', contentType: 'application/json', argv: () => ['/usr/bin/python3', '-c', 'import json,sys; sys.stdout.write(json.dumps({"you_sent": sys.stdin.read()}))'] },
  { name: 'python-html-escape', contentType: 'text/html', argv: () => ['/usr/bin/python3', '-c', 'import html,sys; sys.stdout.write("<p>Invalid key: " + html.escape(sys.stdin.read()) + "</p>")'] },
  { name: 'ruby-json', contentType: 'application/json', argv: () => ['ruby', '-rjson', '-e', 'print JSON.generate({"you_sent" => STDIN.read.force_encoding("UTF-8")}, script_safe: true)'] },
  { name: 'ruby-erb-util', contentType: 'text/html', argv: () => ['ruby', '-rerb', '-e', 'print "<p>Invalid key: " + ERB::Util.html_escape(STDIN.read.force_encoding("UTF-8")) + "</p>"'] },
  { name: 'php-json-encode', contentType: 'application/json', argv: () => ['php', '-r', 'echo json_encode(["you_sent" => stream_get_contents(STDIN)]);'] },
  { name: 'php-htmlspecialchars', contentType: 'text/html', argv: () => ['php', '-r', 'echo "<p>Invalid key: " . htmlspecialchars(stream_get_contents(STDIN), ENT_QUOTES) . "</p>";'] },
  { name: 'perl-json-pp-ascii', contentType: 'application/json', argv: () => ['perl', '-MJSON::PP', '-e', 'binmode STDIN, ":encoding(UTF-8)"; local $/; print JSON::PP->new->ascii->encode({you_sent => scalar <STDIN>})'] },
  { name: 'perl-html-entities', contentType: 'text/html', argv: () => ['perl', '-MHTML::Entities', '-e', 'binmode STDIN, ":encoding(UTF-8)"; binmode STDOUT, ":encoding(UTF-8)"; local $/; print "<p>Invalid key: " . encode_entities(scalar <STDIN>) . "</p>"'] },
  { name: 'node-json', contentType: 'application/json', argv: () => [process.execPath, '-e', 'let v="";process.stdin.on("data",(c)=>v+=c).on("end",()=>process.stdout.write(JSON.stringify({you_sent:v})))'] },
  { name: 'node-encodeuricomponent', contentType: 'text/plain', argv: () => [process.execPath, '-e', 'let v="";process.stdin.on("data",(c)=>v+=c).on("end",()=>process.stdout.write("/callback?key="+encodeURIComponent(v)))'] },
];

const run = runEncoder;

let h: Harness;
let server: https.Server;
const world = makeTempWorld('encoders');
/** What each encoder wrote for the real value, as the upstream sent it: proof that it escaped something. */
const written = new Map<string, string>();

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
    const enc = ENCODERS.find((e) => req.url === `/enc/${e.name}`);
    // Node reads header bytes as latin1, as keyswap wrote them (Python's http.server does the same).
    const value = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (enc === undefined) {
      res.writeHead(404).end();
      return;
    }
    run(enc.argv(), value).then((body) => {
      written.set(enc.name, body.toString('utf8'));
      res.writeHead(200, { 'content-type': `${enc.contentType}; charset=utf-8`, 'content-length': body.length }).end(body);
    }, (err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  h = await startHarness({
    testCa,
    resolve: { [`${HOST}:443`]: `127.0.0.1:${(server.address() as AddressInfo).port}` },
    secretValues: { ENC_KEY: VALUE },
    secrets: `
  ENC_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {ENC_KEY}" }
    bindings:
      - { host: ${HOST}, methods: [GET], paths: ["/enc/*"] }
`,
  });
}, 180_000);

afterAll(async () => {
  await h?.close();
  await new Promise((r) => server?.close(r));
  world.remove();
});

describe.each([['HTTP/1.1', ['--http1.1']], ['HTTP/2', ['--http2']]] as const)('real encoders echo the secret over %s', (_proto, extra) => {
  it.each(ENCODERS.map((e) => e.name))('%s: the agent reads the placeholder, and the scrub is audited', async (name) => {
    const before = h.auditRecords().length;
    const r = await curlVia(h, `https://${HOST}/enc/${name}`, { headers: [`Authorization: Bearer ${PH}`], extra });
    expect(r.status, `${r.stderr} ${r.body}`).toBe(200);
    // The library really did escape part of it: the upstream's bytes are not the raw value.
    expect(written.get(name)).toBeDefined();
    expect(written.get(name)).not.toContain(VALUE);
    expect(leaksIn(r.body, VALUE)).toEqual([]);
    expect(Buffer.from(r.body, 'latin1').toString('utf8')).toContain(PH.slice(0, 20));
    expect(await waitFor(() => h.auditRecords().slice(before).some((r) => r.type === 'response_scrubbed' && r.secret_name === 'ENC_KEY' && r.action === 'redacted'), 5000)).toBe(true);
  });
});

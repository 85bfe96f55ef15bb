import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_VARIABLES } from '../../src/cli/agent-env.js';
import { startGitStandIn, type GitStandIn } from '../clients/git-stand-in.mjs';
import { curlVia } from '../helpers/clients.js';
import { cli, REPO, startCli, type CliResult } from '../helpers/cli.js';
import { DEFAULT_SECRETS, findCanary, PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';
import { createTestCa } from '../helpers/test-ca.js';

const GIT_PLACEHOLDER = 'ghp_PLACEHOLDER-GIT-0123456789abcdefghij';
const GIT_TOKEN = `git-token-${Date.now()}-canary`;

let h: Harness;
let gitServer: GitStandIn;
beforeAll(async () => {
  const testCa = createTestCa();
  gitServer = await startGitStandIn({ tls: testCa.issue(['git.example.test']), key: { real: GIT_TOKEN, placeholder: GIT_PLACEHOLDER }, repoPath: 'repo.git', readme: 'cloned through keyswap' });
  h = await startHarness({
    testCa,
    // closed.example.test: a destination that refuses connections, reached without any name lookup.
    resolve: { 'git.example.test:443': `127.0.0.1:${gitServer.port}`, 'closed.example.test:443': '127.0.0.1:1' },
    top: 'routes: { api: "https://api.example.test" }',
    secrets: `${DEFAULT_SECRETS}
  GIT_TOKEN:
    placeholder: "${GIT_PLACEHOLDER}"
    inject: { type: basic }
    bindings:
      - { host: git.example.test, methods: [GET, POST], paths: ["/**/info/refs", "/**/git-upload-pack"] }
`,
    secretValues: { GIT_TOKEN },
  });
});
afterAll(async () => {
  await h.close();
  await gitServer.close();
});

const configPath = (): string => path.join(h.dir, 'keyswap.yaml');
const lastSeen = (): { headers: Record<string, unknown>; url: string } => h.upstream.requests[h.upstream.requests.length - 1] as never;

/** `keyswap run --config <harness config> -- …`, from the repository (so Node finds the openai package). */
async function keyswapRun(command: string[], opts: { signalOn?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const p = startCli(['run', '--config', configPath(), '--', ...command], { cwd: REPO, env: { HOME: h.dir, ...opts.env } });
  if (opts.signalOn !== undefined) {
    // Signal once the child says it is ready (its trap is set), never after a guessed delay.
    await p.waitForStdout(opts.signalOn);
    p.child.kill('SIGTERM');
  }
  const code = await p.closed;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

describe('keyswap run: any command behind keyswap, in one step', () => {
  it("Node 20's global fetch goes through keyswap (the preload): the upstream gets the secret, the child only the placeholder", async () => {
    const script = "const r = await fetch('https://api.example.test/v1/echo', { headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } }); console.log(r.status, process.env.TEST_API_KEY, await r.text())";
    const r = await keyswapRun([process.execPath, '--input-type=module', '-e', script]);
    expect(r.stderr).not.toMatch(/will not use the proxy/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^200 ${PLACEHOLDER} `));
    expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(findCanary(h, [r.stdout, r.stderr])).toEqual([]);
  });

  // got, node-fetch@2 and axios's node transport all sit on node:https; Node 20 ignores HTTPS_PROXY there.
  describe('node:https goes through keyswap too (the preload), on the global agent and on any https.Agent', () => {
    const NO_DNS = `--require=${JSON.stringify(path.join(REPO, 'test/helpers/no-dns.cjs'))}`;
    const get = (agentExpr: string) => `
      const https = require('node:https');
      const agent = ${agentExpr};
      const once = () => new Promise((resolve, reject) => {
        https.get('https://api.example.test/v1/echo', { agent, headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } }, (res) => {
          let body = ''; res.setEncoding('utf8'); res.on('data', (c) => { body += c; }); res.on('end', () => resolve(res.statusCode + ' ' + body));
        }).on('error', reject);
      });
      once().then(async (a) => { console.log(a); console.log(await once()); process.exit(0); }, (e) => { console.error(e.message); process.exit(1); });`;

    it.each([
      ['https.get with the global agent', 'undefined'],
      ['a keep-alive https.Agent of its own (reused for a second request)', "new https.Agent({ keepAlive: true })"],
      ['agent: false (a fresh agent per request)', 'false'],
    ])('%s', async (_name, agentExpr) => {
      const before = h.upstream.requests.length;
      const r = await keyswapRun([process.execPath, '-e', get(agentExpr)], { env: { NODE_OPTIONS: NO_DNS } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^200 .*${PLACEHOLDER}`, 'm'));
      expect(h.upstream.requests.length - before).toBe(2);
      expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
      expect(findCanary(h, [r.stdout, r.stderr])).toEqual([]);
    });

    it('a host NO_PROXY names is dialled directly (127.0.0.1 here), without keyswap', async () => {
      const auditBefore = h.auditRecords().length;
      const script = `
        require('node:https').get('https://127.0.0.1:${h.upstream.port}/v1/echo', { ca: ${JSON.stringify(h.testCaPem)}, checkServerIdentity: () => undefined,
          headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } }, (res) => { res.resume(); res.on('end', () => console.log(res.statusCode)); })
          .on('error', (e) => { console.error(e.message); process.exit(1); });`;
      const r = await keyswapRun([process.execPath, '-e', script], { env: { NODE_OPTIONS: NO_DNS } });
      expect(r.stdout.trim(), r.stderr).toBe('200');
      expect(lastSeen().headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
      expect(h.auditRecords().length).toBe(auditBefore);
    });

    it('a refused CONNECT is an error on the request, naming the status, never a direct connection', async () => {
      const script = `
        require('node:https').get('https://closed.example.test/', (res) => { console.log('reached', res.statusCode); })
          .on('error', (e) => { console.log('error:', e.message); });`;
      const r = await keyswapRun([process.execPath, '-e', script], { env: { NODE_OPTIONS: NO_DNS } });
      expect(r.stdout).toMatch(/^error: the proxy refused CONNECT closed\.example\.test:443: 502/m);
    });
  });

  it('the child gets every proxy spelling, NO_PROXY for loopback only, the CA for each runtime and the placeholders', async () => {
    const r = await keyswapRun(['sh', '-c', 'env']);
    const env = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY']) expect(env[name]).toBe(h.proxyUrl);
    expect(env.NO_PROXY).toBe('localhost,127.0.0.1,::1');
    expect(env.NODE_EXTRA_CA_CERTS).toBe(h.caPath);
    for (const name of BUNDLE_VARIABLES) expect(readFileSync(env[name] as string, 'utf8'), name).toContain(h.caPem.trim());
    expect(readFileSync(env.WGETRC as string, 'utf8')).toMatch(new RegExp(`^ca_certificate = ${env.SSL_CERT_FILE}$`, 'm'));
    const phpDir = (env.PHP_INI_SCAN_DIR ?? '').split(':');
    expect(phpDir[0]).toBe(''); // PHP's own scan directory first
    expect(readFileSync(path.join(phpDir[1] ?? '', 'keyswap.ini'), 'utf8')).toContain(`curl.cainfo = "${env.SSL_CERT_FILE}"`);
    expect(env.NODE_OPTIONS).toMatch(/--require=.*node-preload\.cjs/);
    expect(env.TEST_API_KEY).toBe(PLACEHOLDER);
    expect(findCanary(h, [r.stdout])).toEqual([]);
  });

  it('an inherited CA variable pointing at the system bundle is replaced; an agent’s own WGETRC is kept, with a note; PHP dirs are extended', async () => {
    const r = await keyswapRun(['sh', '-c', 'echo "$SSL_CERT_FILE|$AWS_CA_BUNDLE|$WGETRC|$PHP_INI_SCAN_DIR"'], {
      env: { SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', AWS_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt', WGETRC: '/home/agent/.wgetrc', PHP_INI_SCAN_DIR: '/etc/php/extra' },
    });
    const [ssl, aws, wgetrc, php] = r.stdout.trim().split('|');
    expect(ssl).toMatch(/ca-bundle\.pem$/);
    expect(aws).toBe(ssl);
    expect(wgetrc).toBe('/home/agent/.wgetrc');
    expect(r.stderr).toContain(`WGETRC is set (/home/agent/.wgetrc), so wget reads that file, not keyswap's: add to it the line: ca_certificate = ${ssl}`);
    expect(php).toMatch(/^\/etc\/php\/extra:.*\/agent\/php$/);
  });

  it("passes the child's exit code through, and a signal to the child", async () => {
    expect((await keyswapRun(['sh', '-c', 'exit 7'])).code).toBe(7);
    const r = await keyswapRun(['sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'], { signalOn: 'ready' });
    expect(r.stdout).toContain('got TERM');
    expect(r.code).toBe(3);
  });

  it('a command that does not exist exits 127 with its name', async () => {
    const r = await keyswapRun(['no-such-command-keyswap-test']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/cannot run no-such-command-keyswap-test: command not found/);
  });

  it('warns, by name, about a real-looking key left in the environment', async () => {
    const r = await keyswapRun(['true'], { env: { OPENAI_API_KEY: `sk-proj-${'a1B2'.repeat(10)}` } });
    expect(r.stderr).toMatch(/OPENAI_API_KEY looks like a real OpenAI key/);
    expect(r.stderr).not.toContain('a1B2a1B2');
  });

  it('keyswap env prints the same environment as export lines', () => {
    const r = cli(['env', '--config', configPath()]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`export HTTPS_PROXY='${h.proxyUrl}'`);
    expect(r.stdout).toContain(`export TEST_API_KEY='${PLACEHOLDER}'`);
    expect(r.stdout).not.toContain(h.canary);
  });
});

describe('real clients through keyswap', () => {
  it('the openai SDK (proxy mode, under keyswap run): a completion and a streamed completion', async () => {
    const script = `import OpenAI from 'openai';
const client = new OpenAI({ apiKey: process.env.TEST_API_KEY, baseURL: 'https://api.example.test/v1' });
const done = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
const stream = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
let text = '';
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
console.log(JSON.stringify({ whole: done.choices[0].message.content, streamed: text }));`;
    const r = await keyswapRun([process.execPath, '--input-type=module', '-e', script]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ whole: 'hello from upstream', streamed: 'hello from a stream' });
    const calls = h.upstream.requests.filter((x) => x.url === '/v1/chat/completions').slice(-2);
    expect(calls.map((c) => c.headers.authorization)).toEqual([`Bearer ${h.canary}`, `Bearer ${h.canary}`]);
    expect(findCanary(h, [r.stdout, r.stderr])).toEqual([]);
  });

  it('the openai SDK (base-URL mode: http://127.0.0.1:…/p/api/v1, no CA at all)', async () => {
    const client = new OpenAI({ apiKey: PLACEHOLDER, baseURL: `${h.proxyUrl}/p/api/v1` });
    const done = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(done.choices[0]?.message.content).toBe('hello from upstream');
    const stream = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('hello from a stream');
    const last = lastSeen();
    expect(last.url).toBe('/v1/chat/completions');
    expect(last.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(last.headers.host).toBe('api.example.test');
  });

  it('git clone over HTTPS with the token placeholder in Basic auth (under keyswap run)', async () => {
    const dest = tempWorld('clone').path('repo');
    const r = await keyswapRun(['git', '-c', 'credential.helper=', 'clone', '-q', `https://x-access-token:${GIT_PLACEHOLDER}@git.example.test/repo.git`, dest]);
    expect(r.stderr).not.toMatch(/fatal/);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dest, 'README'), 'utf8')).toBe('cloned through keyswap');
    // The server saw the real token; what git stored in the clone's config is the placeholder.
    expect(gitServer.credentials).toContain(`x-access-token:${GIT_TOKEN}`);
    expect(readFileSync(path.join(dest, '.git', 'config'), 'utf8')).toContain(GIT_PLACEHOLDER);
    expect(findCanary(h, [r.stdout, r.stderr, readFileSync(path.join(dest, '.git', 'config'), 'utf8')])).toEqual([]);
    expect(h.auditText()).not.toContain(GIT_TOKEN);
  });
});

describe('base-URL mode: /p/<route>/ on the same listener', () => {
  const auth = `Authorization: Bearer ${PLACEHOLDER}`;
  const curlRoute = (url: string, headers: string[]): ReturnType<typeof curlVia> => curlVia(h, url, { headers, proxy: '', extra: ['--noproxy', '*'] });

  it('forwards to the route through the pipeline: the secret injected, the Host the route’s, the echo scrubbed, audited', async () => {
    const r = await curlRoute(`${h.proxyUrl}/p/api/v1/echo?x=1`, [auth]);
    expect(r.status).toBe(200);
    expect(lastSeen().url).toBe('/v1/echo?x=1');
    expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(lastSeen().headers.host).toBe('api.example.test');
    expect(r.body).toContain(PLACEHOLDER);
    expect(findCanary(h, [r.body])).toEqual([]);
    expect(h.auditRecords().some((x) => x.type === 'inject_decision' && x.decision === 'allowed' && (x.destination as { host: string }).host === 'api.example.test')).toBe(true);
  });

  it('the same binding scope applies: a method outside it keeps the placeholder', async () => {
    const r = await curlVia(h, `${h.proxyUrl}/p/api/v1/echo`, { headers: [auth], method: 'DELETE', proxy: '', extra: ['--noproxy', '*'] });
    expect(r.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });

  it('refuses an unknown route (404), a browser request (Origin: 403) and a rebound Host (421), sending nothing', async () => {
    const before = h.upstream.requests.length;
    expect((await curlRoute(`${h.proxyUrl}/p/nope/v1/echo`, [auth])).status).toBe(404);
    expect((await curlRoute(`${h.proxyUrl}/p/api/v1/echo`, [auth, 'Origin: https://evil.example'])).status).toBe(403);
    expect((await curlRoute(`${h.proxyUrl}/p/api/v1/echo`, [auth, 'Sec-Fetch-Site: cross-site'])).status).toBe(403);
    expect((await curlRoute(`${h.proxyUrl}/p/api/v1/echo`, [auth, `Host: evil.example:${h.proxyPort}`])).status).toBe(421);
    expect(h.upstream.requests.length).toBe(before);
  });
});

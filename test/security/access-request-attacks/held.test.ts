import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openControl } from '../../../src/control/index.js';
import { askAccess } from '../../../src/mcp/index.js';
import { idOf, operatorCli, sha } from '../../helpers/operator-cli.js';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../../helpers/harness.js';

/*
 * Attacks on keyswap_request_access that keyswap stopped, beyond test/mcp/request-access: YAML injection through
 * what approve writes, keyswap.invalid bodies and methods, one client's full queue, session clients, placeholders
 * in the reason, another client's name with one's own token.
 */
const TOKEN_A = 'ks_agent-a-token-0123456789abcdef';
const TOKEN_B = 'ks_agent-b-token-0123456789abcdef';
const PH_OTHER = 'sk-PLACEHOLDER-held-other-0123456789';

let h: Harness;
const { configPath, op, proxyAs } = operatorCli(() => h);

/** A raw request to http://keyswap.invalid/… through the proxy, as agent-a. */
function raw(method: string, urlPath: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: h.proxyPort, method, path: `http://keyswap.invalid${urlPath}`, agent: false,
      headers: { 'proxy-authorization': `Basic ${Buffer.from(`agent-a:${TOKEN_A}`).toString('base64')}`, 'content-type': 'application/json', ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const healthy = async (): Promise<number> => (await raw('GET', '/healthz', '')).status;

beforeAll(async () => {
  h = await startHarness({
    secretValues: { OTHER_KEY: 'other-real-value-held-0123456789' },
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY, OTHER_KEY] }\n  agent-b: { token_sha256: "${sha(TOKEN_B)}", secrets: [OTHER_KEY] }\n`,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/v1/**"] }
  OTHER_KEY:
    placeholder: "${PH_OTHER}"
    inject: { header: X-Other, format: "{OTHER_KEY}" }
    bindings: [ { host: api.example.test, paths: ["/other/**"] } ]
`,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('access request attacks that hold', () => {
  it('approve writes exactly the binding asked for: YAML indicator characters in paths stay one path each, nothing else is added', async () => {
    const paths = ['/v3/a:b,c', '/v3/&anchor', '/v3/!!binary', "/v3/x'y", '/v3/*/=;@$+', '/v3/-~.()'];
    const asked = await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['PATCH'], paths, reason: 'yaml' });
    expect(asked.ok, asked.text).toBe(true);
    const before = parse(readFileSync(configPath(), 'utf8')) as Record<string, unknown>;
    const approved = await op('approve', idOf(asked.text));
    expect(approved.code, approved.stderr).toBe(0);
    const after = parse(readFileSync(configPath(), 'utf8')) as { secrets: Record<string, { bindings: unknown[] }> } & Record<string, unknown>;
    expect(after.secrets.TEST_API_KEY?.bindings.at(-1)).toEqual({ host: 'api.example.test', methods: ['PATCH'], paths });
    expect(after.secrets.TEST_API_KEY?.bindings).toHaveLength(2);
    // Nothing else in the file changed.
    const b = before as { secrets: Record<string, { bindings: unknown[] }> };
    b.secrets.TEST_API_KEY?.bindings.push({ host: 'api.example.test', methods: ['PATCH'], paths });
    expect(after).toEqual(before);
  });

  it('a path, host or method that could break out of the flow map is refused when asked', async () => {
    for (const bad of [
      { paths: ['/x], host: evil.example.test, paths: [/**'] },
      { paths: ['/x}\n  OTHER: {placeholder: x}'] },
      { paths: ['/v1/**"'] },
      { paths: ['/v1/?x=*'] },
      { host: 'api.example.test, paths: [/**]' },
      { host: 'api.example.test\n' },
      { host: '*.example.test' },
      { methods: ['GET]'] },
    ]) {
      const r = await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'TEST_API_KEY', host: 'api.example.test', reason: 'inject', ...bad });
      expect(r.ok, JSON.stringify(bad)).toBe(false);
      expect(r.text).toContain('(400)');
    }
  });

  it('keyswap.invalid survives bad bodies and methods, and /healthz keeps answering', async () => {
    expect((await raw('POST', '/v1/access-requests', Buffer.alloc(17 * 1024, 0x20))).status).toBe(413);
    expect((await raw('POST', '/v1/access-requests', '['.repeat(16_000))).status).toBe(400);
    expect((await raw('POST', '/v1/access-requests', '{"__proto__":{"secret":"TEST_API_KEY"},"host":"a.example.test","reason":"r"}')).status).toBe(400);
    expect((await raw('POST', '/v1/access-requests', JSON.stringify({ secret: 'TEST_API_KEY', host: 'a.example.test', reason: 'x'.repeat(501) }))).status).toBe(400);
    expect((await raw('POST', '/v1/access-requests', JSON.stringify({ secret: 'TEST_API_KEY', host: 'a.example.test', methods: Array(17).fill('GET'), reason: 'r' }))).status).toBe(400);
    expect((await raw('GET', '/v1/access-requests', '')).status).toBe(405);
    expect((await raw('POST', '/v1/access-requests/ar-00000000/accepted', '{}')).status).toBe(405);
    expect((await raw('POST', '/v1/access-requests?x=1', '{}')).status).toBe(405);
    expect(await healthy()).toBe(200);
    expect(h.child.exitCode).toBeNull();
  });

  it("one client's full queue does not block another client; another client's name with one's own token is 407", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'TEST_API_KEY', host: `q${i}.example.test`, reason: 'fill' });
      expect(r.ok, r.text).toBe(true);
      ids.push(idOf(r.text));
    }
    expect((await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'TEST_API_KEY', host: 'q9.example.test', reason: 'fill' })).text).toContain('429');
    const b = await askAccess(proxyAs('agent-b', TOKEN_B), { secret: 'OTHER_KEY', host: 'b.example.test', reason: 'mine' });
    expect(b.ok, b.text).toBe(true);
    expect((await askAccess(proxyAs('agent-b', TOKEN_A), { secret: 'OTHER_KEY', host: 'c.example.test', reason: 'r' })).text).toContain('407');
    for (const id of [...ids, idOf(b.text)]) expect((await op('deny', id)).code).toBe(0);
  });

  it('a keyswap run session asks only for the secrets it was given, and counts against its parent', async () => {
    const res = await openControl(path.join(h.dir, 'state'), 'POST', '/v1/sessions', { parent: 'agent-a', secrets: ['OTHER_KEY'], ttl_seconds: 600, command: 'agent' });
    const first = await new Promise<string>((resolve) => res.once('data', (c: Buffer) => resolve(c.toString('utf8'))));
    const s = JSON.parse(first.split('\n')[0] as string) as { name: string; token: string };
    try {
      const asSession = proxyAs(s.name, s.token);
      expect((await askAccess(asSession, { secret: 'TEST_API_KEY', host: 's.example.test', reason: 'agent-a holds it; this session does not' })).text).toContain('404');
      expect((await askAccess(asSession, { secret: PLACEHOLDER, host: 's.example.test', reason: 'by placeholder' })).text).toContain('404');
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(idOf((await askAccess(asSession, { secret: 'OTHER_KEY', host: `s${i}.example.test`, reason: 's' })).text));
      for (let i = 0; i < 4; i++) ids.push(idOf((await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'OTHER_KEY', host: `p${i}.example.test`, reason: 'p' })).text));
      expect(ids.every((id) => id !== '')).toBe(true);
      // The session and its parent share the parent's 8.
      expect((await askAccess(asSession, { secret: 'OTHER_KEY', host: 'more.example.test', reason: 'more' })).text).toContain('429');
      const listed = await op('approvals');
      expect(listed.stdout).toContain(`${ids[0] as string}  ${s.name}  OTHER_KEY → s0.example.test`);
      for (const id of ids) expect((await op('deny', id)).code).toBe(0);
    } finally {
      res.destroy();
    }
  });

  it('a placeholder in the reason is shown as the placeholder, never swapped; nothing is forwarded upstream', async () => {
    const seen = h.upstream.requests.length;
    const r = await raw('POST', '/v1/access-requests', JSON.stringify({ secret: 'TEST_API_KEY', host: 'ph.example.test', reason: `use ${PLACEHOLDER} and ${PH_OTHER}` }), { authorization: `Bearer ${PLACEHOLDER}` });
    expect(r.status).toBe(202);
    expect(r.text).not.toContain(h.canary);
    const listed = await op('approvals');
    expect(listed.stdout).toContain(`use ${PLACEHOLDER} and ${PH_OTHER}`);
    expect(h.upstream.requests.length).toBe(seen);
    expect((await op('deny', idOf(r.text))).code).toBe(0);
  });

  it('never shows a secret', () => {
    expect(findCanary(h)).toEqual([]);
    for (const text of [h.auditText(), h.stdout(), h.stderr()]) expect(text).not.toContain('other-real-value-held-0123456789');
  });
});

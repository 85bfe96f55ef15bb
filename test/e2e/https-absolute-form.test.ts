import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { playConnection, type ParsedResponse } from '../helpers/raw-agent.js';

// Issue #19: axios before 1.21 (and a few other old clients) write `POST https://host/path HTTP/1.1` to the proxy
// instead of opening a CONNECT tunnel. keyswap serves that form like base-URL mode: plaintext only on the agent's
// loopback leg, strict TLS to the URL's host, the same pipeline (destination check, bindings, audit, scrubbing).
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

async function send(head: string): Promise<ParsedResponse> {
  const r = await playConnection({ proxyPort: h.proxyPort, connect: null, requests: [{ bytes: Buffer.from(head, 'latin1'), method: 'GET' }], pipelined: false, deadlineMs: 10_000 });
  const first = r.responses[0];
  if (first === undefined) throw new Error(`no response: ${r.error ?? ''}`);
  return first;
}

describe('https:// absolute-form from loopback', () => {
  it('is forwarded over verified TLS with the secret injected, and the echo scrubbed from the answer', async () => {
    const before = h.upstream.requests.length;
    const r = await send(`GET https://api.example.test/v1/echo?x=1 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(200);
    expect(h.upstream.requests.length).toBe(before + 1);
    const seen = h.upstream.requests.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(seen?.url).toBe('/v1/echo?x=1');
    expect(r.body.toString()).toContain(PLACEHOLDER);
    expect(findCanary(h, [r.body.toString('latin1')])).toEqual([]);
    expect(h.auditRecords().some((e) => e.type === 'inject_decision' && e.decision === 'allowed' && (e.destination as { host?: string }).host === 'api.example.test')).toBe(true);
  });

  it('holds the Host header to the URL’s authority, like a CONNECT target (421, nothing sent)', async () => {
    const before = h.upstream.requests.length;
    const r = await send(`GET https://api.example.test/v1/echo HTTP/1.1\r\nHost: other.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(421);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('an upstream whose certificate keyswap does not trust gets nothing (502), as through CONNECT', async () => {
    const before = h.untrustedUpstream.requests.length;
    const r = await send(`GET https://untrusted.example.test/v1/echo HTTP/1.1\r\nHost: untrusted.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(502);
    expect(r.body.toString()).toBe('keyswap: upstream certificate not trusted\n');
    expect(h.untrustedUpstream.requests.length).toBe(before);
  });

  it('the binding scope still applies: a path outside it keeps the placeholder', async () => {
    const r = await send(`GET https://api.example.test/v2/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
    expect(r.status).not.toBe(0);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });
});

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { curlVia, rawTlsVia } from '../helpers/clients.js';
import { bearer, secretsYaml } from '../helpers/config-yaml.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
const AUTH = `Authorization: Bearer ${PLACEHOLDER}`;
const API = { host: 'api.example.test' };

describe('fail closed (K4, K5)', () => {
  it('an audit log that cannot be written gives 503 and the upstream receives nothing', async () => {
    // A 1 MiB file-size limit (2048 blocks of 512 bytes): the CA files fit, proxy_start still fits after the
    // pre-fill, the first inject_decision does not.
    h = await startHarness({ fileSizeLimitBlocks: 2048, auditPrefillBytes: 2048 * 512 - 420 });
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [AUTH] });
    expect(res.status).toBe(503);
    expect(res.body).toBe('keyswap: audit log unavailable\n');
    expect(h.upstream.requests).toHaveLength(0);
    // Poisoned, not flaky: the next request fails closed too, even one with no placeholder to audit... and one with.
    const again = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [AUTH] });
    expect(again.status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    expect(findCanary(h)).toEqual([]);
  });

  it('a secret the backend does not have gives 503 and nothing is sent', async () => {
    h = await startHarness({
      secrets: secretsYaml({ MISSING_KEY: { placeholder: 'sk-PLACEHOLDER-MISSING-0123456789ab', inject: bearer('MISSING_KEY'), bindings: [API] } }),
    });
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: ['Authorization: Bearer sk-PLACEHOLDER-MISSING-0123456789ab'] });
    expect(res.status).toBe(503);
    expect(res.body).toBe('keyswap: secret unavailable\n');
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'deny', reason: 'secret_unavailable', status: 503 }));
  });

  it('two different placeholders competing for one site give 400 and nothing is sent', async () => {
    h = await startHarness({
      secrets: secretsYaml({
        A_KEY: { placeholder: 'sk-PLACEHOLDER-AAAA-0123456789abcdef', inject: bearer('A_KEY'), bindings: [API] },
        B_KEY: { placeholder: 'sk-PLACEHOLDER-BBBB-0123456789abcdef', inject: bearer('B_KEY'), bindings: [API] },
      }),
      secretValues: { A_KEY: 'a-value', B_KEY: 'b-value' },
    });
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: ['Authorization: Bearer sk-PLACEHOLDER-AAAA-0123456789abcdef sk-PLACEHOLDER-BBBB-0123456789abcdef'] });
    expect(res.status).toBe(400);
    expect(res.body).toBe('keyswap: two placeholders compete for one credential site\n');
    expect(h.upstream.requests).toHaveLength(0);
  });

  it('unmatched_destination_policy: deny answers 403 to a CONNECT for an unbound host and dials nothing', async () => {
    h = await startHarness({ top: 'unmatched_destination_policy: deny' });
    const res = await curlVia(h, 'https://unbound.example.test/v1/echo', { cacert: h.testCaPath });
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toMatch(/403/);
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'deny', reason: 'unbound_destination', method: 'CONNECT' }));
    const plain = await curlVia(h, 'http://unbound.example.test/v1/echo');
    expect(plain.status).toBe(403);
    expect(plain.body).toBe('keyswap: destination not allowed\n');
  });

  it('tls_termination: all decrypts unbound hosts too, and still never injects there', async () => {
    h = await startHarness({ top: 'tls_termination: all' });
    const res = await curlVia(h, 'https://unbound.example.test/v1/echo', { headers: [AUTH] });
    expect(res.status).toBe(200); // keyswap's CA was enough: keyswap terminated this TLS
    expect(h.upstream.requests[0]?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'inject_decision', reason: 'destination_not_in_binding' }));
  });
});

describe('query and Basic sites', () => {
  it('?key= injection replaces the value and never adds a duplicate parameter', async () => {
    h = await startHarness({
      secrets: secretsYaml({ MAPS_KEY: { placeholder: 'maps-PLACEHOLDER-0123456789abcdefgh', inject: { type: 'query', param: 'key' }, bindings: [{ ...API, paths: ['/v1/*'] }] } }),
      secretValues: { MAPS_KEY: 'real&value=x' },
    });
    await curlVia(h, 'https://api.example.test/v1/echo?a=1&key=maps-PLACEHOLDER-0123456789abcdefgh&b=2');
    expect(h.upstream.requests[0]?.url).toBe('/v1/echo?a=1&key=real%26value%3Dx&b=2');
  });

  it('a placeholder inside Basic credentials is replaced inside them (git-style auth)', async () => {
    h = await startHarness({
      secrets: secretsYaml({ GIT_TOKEN: { placeholder: 'ghp_PLACEHOLDER_0123456789abcdefgh', inject: { type: 'basic' }, bindings: [{ ...API, methods: ['GET'] }] } }),
      secretValues: { GIT_TOKEN: 'ghp_real' },
    });
    await curlVia(h, 'https://api.example.test/v1/echo', { extra: ['-u', 'x-access-token:ghp_PLACEHOLDER_0123456789abcdefgh'] });
    expect(h.upstream.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('x-access-token:ghp_real').toString('base64')}`);
  });
});

describe('backpressure', () => {
  it('a slow client keeps RSS bounded on a 200 MB body', async () => {
    h = await startHarness();
    const pid = h.child.pid as number;
    const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    const baseline = rssKb();
    const socket = await rawTlsVia(h, 'api.example.test');
    let received = 0;
    socket.on('data', (c: Buffer) => { received += c.length; });
    socket.write(`GET /v1/big?mb=200 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`);
    await waitFor(() => received > 1024 * 1024);
    socket.pause(); // the agent stops reading; the upstream keeps sending
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      peak = Math.max(peak, rssKb());
      await new Promise((r) => setTimeout(r, 100));
    }
    socket.destroy();
    expect(received).toBeLessThan(200 * 1024 * 1024);
    expect((peak - baseline) / 1024).toBeLessThan(64); // MB above baseline while 200 MB waited upstream
  });
});

describe('no second resolution', () => {
  it('a secret whose value looks like another placeholder is sent as it is, never resolved a second time', async () => {
    const B_PH = 'sk-PLACEHOLDER-BBBB-0123456789abcdef';
    h = await startHarness({
      secretValues: { A_KEY: B_PH, B_KEY: 'b-real-value' },
      secrets: secretsYaml({
        A_KEY: { placeholder: 'sk-PLACEHOLDER-AAAA-0123456789abcdef', inject: bearer('A_KEY'), bindings: [API] },
        B_KEY: { placeholder: B_PH, inject: bearer('B_KEY'), bindings: [API] },
      }),
    });
    await curlVia(h, 'https://api.example.test/v1/upload', { headers: ['Authorization: Bearer sk-PLACEHOLDER-AAAA-0123456789abcdef'] });
    expect(h.upstream.requests[0]?.headers.authorization).toBe(`Bearer ${B_PH}`);
  });
});

describe('composite secrets through a live keyswap', () => {
  it('a totp template renders the code for the wall-clock time, not a monotonic clock', async () => {
    const { totp } = await import('../../src/inject/template-eval.js');
    const seed = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    h = await startHarness({
      secretValues: { TOTP_SEED: seed },
      secrets: secretsYaml({
        OTP: { placeholder: 'otp-PLACEHOLDER-0123456789abcdefghi', inject: { header: 'x-otp', template: '{{ totp(TOTP_SEED) }}' }, compose: ['TOTP_SEED'], bindings: [API] },
      }),
    });
    const before = Date.now();
    await curlVia(h, 'https://api.example.test/v1/upload', { headers: ['x-otp: otp-PLACEHOLDER-0123456789abcdefghi'] });
    const after = Date.now();
    expect([totp(seed, before), totp(seed, after)]).toContain(h.upstream.requests[0]?.headers['x-otp']);
  });
});

describe('health', () => {
  it('GET http://keyswap.invalid/healthz answers 200 while healthy and 503 once the audit log has failed', async () => {
    h = await startHarness({ fileSizeLimitBlocks: 2048, auditPrefillBytes: 2048 * 512 - 420 });
    const ok = await curlVia(h, 'http://keyswap.invalid/healthz');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ status: 'ok' });
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [AUTH] }); // this audit write fails
    const failed = await curlVia(h, 'http://keyswap.invalid/healthz');
    expect(failed.status).toBe(503);
    expect(JSON.parse(failed.body)).toEqual({ status: 'audit_unavailable' });
  });
});

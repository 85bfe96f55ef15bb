import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startFakeBws, type FakeBws } from '../helpers/fake-bws.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
let bws: FakeBws | undefined;
afterEach(async () => {
  await h?.close();
  await bws?.close();
  h = bws = undefined;
});

const PH = 'sk-PLACEHOLDER-BWS-0123456789abcdef';

async function start(timeoutSeconds = 2, ttlSeconds = 1): Promise<{ h: Harness; bws: FakeBws }> {
  bws = await startFakeBws();
  const tokenFile = path.join('/tmp', `bws-token-${process.pid}-${Date.now()}`);
  writeFileSync(tokenFile, bws.accessToken, { mode: 0o600 });
  h = await startHarness({
    backend: `backend:
  type: bws
  config:
    organization_id: "${bws.organizationId}"
    access_token_file: ${tokenFile}
    api_url: ${bws.url}/api
    identity_url: ${bws.url}/identity
    timeout_seconds: ${timeoutSeconds}`,
    top: `cache: { ttl_seconds: ${ttlSeconds}, jitter_seconds: 0 }`,
    secrets: `
  OPENAI_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  OTHER_KEY:
    placeholder: "sk-PLACEHOLDER-OTHER-0123456789abcd"
    inject: { header: x-api-key, format: "{OTHER_KEY}" }
    bindings: [ { host: other.example.test } ]`,
  });
  return { h, bws };
}

describe('bws backend: the real SDK against a local server speaking the BWS protocol', () => {
  it('logs in, maps the name to its id, and injects the value; a rotation is used within the TTL (K8)', async () => {
    const { h, bws } = await start();
    bws.set('OPENAI_API_KEY', 'bws-value-1');
    const first = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(first.status).toBe(200);
    expect(h.upstream.requests[0]?.headers.authorization).toBe('Bearer bws-value-1');
    bws.set('OPENAI_API_KEY', 'bws-value-2');
    expect(
      await waitFor(() => false, 1_100), // let the 1 s TTL pass
    ).toBe(false);
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(h.upstream.requests[1]?.headers.authorization).toBe('Bearer bws-value-2');
    expect(bws.calls.login).toBe(1);
    expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/bws-value|0\.[0-9a-f-]{36}\./);
  });

  it('20 concurrent requests on a cold cache cost one get-by-ids call', async () => {
    const { h, bws } = await start(2, 300);
    bws.set('OPENAI_API_KEY', 'bws-value');
    const results = await Promise.all(Array.from({ length: 20 }, () => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(bws.calls['get-by-ids']).toBe(1);
  });

  it('a hung BWS makes requests to its bound host fail closed within the timeout, and keyswap keeps serving', async () => {
    const { h, bws } = await start(1);
    bws.mode = 'hang';
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`], maxTimeSeconds: 10 });
    expect(res.status).toBe(503);
    // Without a placeholder too: the response could echo a bound secret keyswap cannot fetch to scrub (K1).
    const plain = await curlVia(h, 'https://api.example.test/v1/echo', { maxTimeSeconds: 5 });
    expect(plain.status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    const health = await curlVia(h, 'http://keyswap.invalid/healthz', { maxTimeSeconds: 5 });
    expect(health.status).toBe(200);
  });

  it('a BWS error status fails closed with 503, naming the status in the log only', async () => {
    const { h, bws } = await start();
    bws.mode = { status: 500 };
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(res.status).toBe(503);
    expect(res.body).toBe('keyswap: secret unavailable\n');
  });

  it('an ambiguous name is refused (503), with both ids in the log and neither value anywhere', async () => {
    const { h, bws } = await start();
    const a = bws.add('OPENAI_API_KEY', 'bws-value-one');
    const b = bws.add('OPENAI_API_KEY', 'bws-value-two');
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(res.status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.stderr()).toContain(a);
    expect(h.stderr()).toContain(b);
    expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/bws-value/);
  });
});

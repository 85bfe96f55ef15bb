import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { cli } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

let h: Harness;
let metricsUrl: string;
beforeAll(async () => {
  h = await startHarness({ args: ['--metrics', '127.0.0.1:0'] });
  metricsUrl = /metrics: (http:\/\/\S+)/.exec(h.stdout())?.[1] ?? '';
});
afterAll(async () => {
  await h.close();
});

const scrape = async (): Promise<string> => (await fetch(metricsUrl)).text();
const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
};

describe('Prometheus metrics (--metrics HOST:PORT)', () => {
  it('counts injections, kept placeholders and refusals exactly as the audit log records them', async () => {
    const auth = `Authorization: Bearer ${PLACEHOLDER}`;
    expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [auth] })).status).toBe(200);
    expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [auth] })).status).toBe(200);
    // DELETE is outside the binding's methods: forwarded with the placeholder, audited as a scope violation.
    await curlVia(h, 'https://api.example.test/v1/echo', { method: 'DELETE', headers: [auth] });
    // A Host header naming another host than the CONNECT target: refused with 421.
    expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [auth, 'Host: other.example.test'] })).status).toBe(421);
    await waitFor(() => h.auditRecords().filter((r) => r.type === 'upstream_response').length >= 3);

    const text = await scrape();
    const records = h.auditRecords();
    const allowed = records.filter((r) => r.type === 'inject_decision' && r.decision === 'allowed').length;
    expect(allowed).toBe(2);
    expect(value(text, 'keyswap_injections_total{secret="TEST_API_KEY"}')).toBe(allowed);
    expect(value(text, 'keyswap_decisions_total{decision="allowed",reason="binding_matched"}')).toBe(allowed);
    expect(value(text, 'keyswap_decisions_total{decision="denied",reason="binding_scope_violation"}')).toBe(1);
    expect(value(text, 'keyswap_refusals_total{reason="sni_host_mismatch"}')).toBe(1);
    expect(value(text, 'keyswap_upstream_responses_total{code_class="2xx",complete="true"}')).toBeGreaterThanOrEqual(2);
    expect(value(text, 'keyswap_audit_healthy')).toBe(1);
    expect(value(text, 'keyswap_audit_write_seconds_count')).toBeGreaterThan(0);
    expect(value(text, 'keyswap_backend_fetch_seconds_count{result="ok"}')).toBe(1); // one miss, then cache hits
    expect(value(text, 'keyswap_secret_cache_lookups_total{result="hit"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'keyswap_open_connections')).toBeGreaterThanOrEqual(0);
  });

  it('no secret, placeholder, path or header value appears anywhere in the exposition', async () => {
    const text = await scrape();
    for (const forbidden of [h.canary, Buffer.from(h.canary).toString('base64'), PLACEHOLDER, 'PLACEHOLDER', '/v1/', 'Bearer']) expect(text).not.toContain(forbidden);
    // Every label value is from a closed set or a configured secret name.
    const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]);
    for (const v of labelValues) expect(v).toMatch(/^[A-Za-z0-9_.+\-]*$/);
  });

  it('serves only GET /metrics; anything else is 404', async () => {
    expect((await fetch(metricsUrl.replace('/metrics', '/'))).status).toBe(404);
    const res = await fetch(metricsUrl);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('--metrics refuses what would expose it', () => {
  it('a non-loopback address exits 2 with the reason, before anything listens', () => {
    const r = cli(['serve', '--metrics', '0.0.0.0:9464', '--config', '/nonexistent/keyswap.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--metrics 0\.0\.0\.0:9464: 0\.0\.0\.0 is not a loopback address/);
  });

  it('a malformed address exits 2 naming the expected form', () => {
    const r = cli(['serve', '--metrics', 'localhost', '--config', '/nonexistent/keyswap.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected HOST:PORT/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { exchange, rawPlain, rawTlsVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

/*
 * An agent (or the operator reading its log) that holds a refusal finds it in the audit log at that moment:
 * keyswap answers a refusal only after the write that holds its record (written or failed). Read without waiting,
 * so a record that trails its answer fails here; each kind is tried many times, since the race is a matter of
 * scheduling.
 */
const ROUNDS = 15;
let h: Harness;
afterEach(async () => { await h?.close(); });

const denies = (reason: string): number => h.auditRecords().filter((r) => r.type === 'deny' && r.reason === reason).length;

describe('a refusal is on record before the agent has it', () => {
  it('plaintext to an unbound host, CONNECT to one, and a decrypted request keyswap refuses: each record is there as the answer arrives', async () => {
    h = await startHarness({
      top: 'unmatched_destination_policy: deny',
      secrets: `
  MISSING_KEY:
    placeholder: "sk-PLACEHOLDER-MISSING-0123456789ab"
    inject: { header: Authorization, format: "Bearer {MISSING_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/**"] }
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/**"] }
`,
    });
    const seen: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const plainBefore = denies('unbound_destination');
      const plain = await exchange(await rawPlain(h), `GET http://unbound.example.test/r${i} HTTP/1.1\r\nHost: unbound.example.test\r\nConnection: close\r\n\r\n`);
      seen.push(`${plain.slice(0, 12)} ${denies('unbound_destination') - plainBefore}`);

      const connectBefore = denies('unbound_destination');
      const connect = await exchange(await rawPlain(h), `CONNECT unbound.example.test:443 HTTP/1.1\r\nHost: unbound.example.test:443\r\n\r\n`);
      seen.push(`${connect.slice(0, 12)} ${denies('unbound_destination') - connectBefore}`);

      const missingBefore = denies('secret_unavailable');
      const t = await rawTlsVia(h, 'api.example.test');
      const missing = await exchange(t, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer sk-PLACEHOLDER-MISSING-0123456789ab\r\nConnection: close\r\n\r\n`);
      seen.push(`${missing.slice(0, 12)} ${denies('secret_unavailable') - missingBefore}`);
    }
    expect(seen).toEqual(Array.from({ length: ROUNDS }, () => ['HTTP/1.1 403 1', 'HTTP/1.1 403 1', 'HTTP/1.1 503 1']).flat());
    expect(h.upstream.requests).toHaveLength(0);
  }, 60_000);
});

import { ProxyAgent, WebSocket } from 'undici';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness, waitFor } from '../../helpers/harness.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { startWsUpstream } from '../../helpers/ws-upstream.js';

/*
 * WebSocket messages: beforeSubstituting (pipeline.ts:137-142) gets the names of every placeholder found in the
 * message, honeytokens included (websocket-bridge.ts:106; a honeytoken's substitution has value null: nothing is
 * written). pipeline.ts:140 admits and commits a use for all of them, so:
 *  - a honeytoken placeholder in a message is counted as a use of a quota (a quota's secrets default to all) though
 *    no secret is written into the message (docs: "each WebSocket message a secret is written into"), and
 *  - once the quota is exhausted, admitUse throws before auditBodyUse (pipeline.ts:141) records
 *    honeytoken_triggered: the connection closes 1008 as usage_limit_reached and the honeytoken goes unrecorded.
 */

const MSG_PH = 'wsq-PLACEHOLDER-0123456789abcdef';
const HONEY = 'wsh-PLACEHOLDER-HONEYHONEYHONEY01';

describe('attack27: a honeytoken placeholder in a WebSocket message', () => {
  it('is not a quota use, and is recorded even past the limit', async () => {
    const testCa = createTestCa();
    let auditPath = '';
    const up = await startWsUpstream({ tls: testCa.issue(['rt.example.test']), auditPath: () => auditPath });
    const h = await startHarness({
      testCa,
      top: 'usage:\n  all: { limit: 2, period: day }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: rt.example.test, methods: [GET], paths: ["/ws/**"] } ]
  WS_TOKEN:
    placeholder: "${MSG_PH}"
    inject: { type: websocket_message }
    bindings: [ { host: rt.example.test, paths: ["/ws/**"] } ]
  HONEY:
    placeholder: "${HONEY}"
    honeytoken: true
    inject: { header: X-Honey, format: "{HONEY}" }
    bindings: [ { host: honey.example.test } ]
`,
      secretValues: { WS_TOKEN: 'ws-real-token-value', HONEY: 'honey' },
      resolve: { 'rt.example.test:443': `127.0.0.1:${up.port}` },
    });
    auditPath = h.auditPath;
    const dispatcher = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
    try {
      const ws = new WebSocket('wss://rt.example.test/ws/echo', { dispatcher, headers: { authorization: `Bearer ${PLACEHOLDER}` } });
      const messages: string[] = [];
      ws.addEventListener('message', (e) => messages.push(String(e.data)));
      let closed: number | null = null;
      ws.addEventListener('close', (e) => { closed = e.code; });
      await new Promise<void>((resolve, reject) => { ws.addEventListener('open', () => resolve()); ws.addEventListener('error', () => reject(new Error('ws failed'))); });
      // Use 1: the handshake. A honeytoken in a message writes no secret anywhere.
      ws.send(`probe ${HONEY}`);
      expect(await waitFor(() => messages.length === 1 || closed !== null)).toBe(true);
      expect(h.auditRecords().filter((r) => r.type === 'honeytoken_triggered' && r.secret_name === 'HONEY')).toHaveLength(1);
      // Use 2: a message the secret is written into: the quota (2) still has room for it.
      ws.send(`token ${MSG_PH}`);
      expect(await waitFor(() => messages.length === 2 || closed !== null)).toBe(true);
      expect(closed, JSON.stringify(h.auditRecords().filter((r) => r.type === 'deny'))).toBeNull();
      expect(up.seen.at(-1)?.messages.map((m) => m.data.toString())).toContain('token ws-real-token-value');
      // Past the limit: the honeytoken's use is still recorded.
      ws.send(`probe again ${HONEY}`);
      await waitFor(() => closed !== null || messages.length === 3);
      expect(h.auditRecords().filter((r) => r.type === 'honeytoken_triggered' && r.secret_name === 'HONEY')).toHaveLength(2);
      ws.close();
    } finally {
      await dispatcher.close();
      await h.close();
      await up.close();
    }
  }, 30_000);
});

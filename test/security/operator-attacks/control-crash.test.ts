import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { control, controlSock } from './util.js';

let h: Harness;
afterEach(async () => { await h?.close(); });

function raw(hh: Harness, method: string, p: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const r = http.request({ socketPath: controlSock(hh), method, path: p, agent: false, headers: { 'content-length': String(body.length) } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    r.on('error', () => resolve(-1));
    r.end(body);
  });
}

const CASES: [string, string, string][] = [
  ['revoke-bad-escape', '/v1/clients/%E0%A4%A/revoke', ''],
  ['explain-bad-url', '/v1/explain', '{"method":"GET","url":"http://[::1","headers":[["a","b"]]}'],
  ['session-no-clients', '/v1/sessions', '{"parent":"x","command":"x"}'],
  ['session-unknown-parent (keyswap run --client typo)', '/v1/sessions', '{"parent":"agent-typo","command":"x"}'],
  ['session-secret-outside (keyswap run --secrets OTHER)', '/v1/sessions', '{"parent":"agent-a","secrets":["OTHER"],"command":"x"}'],
];

describe('operator attacks: one malformed control request', () => {
  for (const [name, p, body] of CASES) {
    it(`${name}: keyswap keeps running`, async () => {
      h = await startHarness(name.startsWith('session-no') ? {} : { top: 'clients:\n  agent-a: { token_sha256: "' + 'a'.repeat(64) + '", secrets: [TEST_API_KEY] }\n' });
      const code = await raw(h, 'POST', p, Buffer.from(body));
      await waitFor(() => false, 300);
      const st = await control(h, 'GET', '/v1/status').then((r) => r.status, (e: Error) => e.message);
      expect({ code, st, exit: h.child.exitCode, stderr: h.stderr().slice(-300) }).toMatchObject({ st: 200, exit: null });
    }, 30_000);
  }
});

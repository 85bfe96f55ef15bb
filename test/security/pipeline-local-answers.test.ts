import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// keyswap's own answers (the health endpoint and its 404) share a connection's order with proxied requests: a
// request pipelined behind one must be treated as any request behind an answer. Found by an attacker review: the
// 404 said `connection: close` outside the pipeline's bookkeeping, so the request behind it still went upstream
// with the secret whenever the agent did not read fast enough for the close to happen first.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

function stuckAgent(fill: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [path.join(__dirname, '../fixtures/stuck-agent.py'), String(h.proxyPort), PLACEHOLDER, String(fill)], { stdio: 'ignore' });
    p.once('exit', resolve);
    p.once('error', reject);
  });
}

describe('requests pipelined behind keyswap\'s own answers', () => {
  it('a request pipelined behind the health endpoint\'s 404 (which closes the connection) never goes upstream, even when the agent does not read', async () => {
    // 300 health answers fill the agent's tiny, unread receive buffer, then an unknown local path, then a request
    // carrying the placeholder to a destination bound for plain http.
    expect(await stuckAgent(300)).toBe(0);
    await waitFor(() => false, 300);
    expect(h.plainUpstream.requests.filter((r) => r.url.includes('behind-local')).map((r) => r.headers.authorization)).toEqual([]);
    // Not even decided: the request stopped before its audit record, as one behind a refusal does.
    expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && r.destination && JSON.stringify(r.destination).includes('plain.example.test'))).toEqual([]);
  });
});

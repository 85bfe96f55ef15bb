import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// A request pipelined behind an answer that closes the connection must never be decided or go upstream, whoever
// wrote that answer. Found by two attacker reviews: keyswap's own 404 was outside the pipeline's bookkeeping, and
// so are the answers Node's HTTP server writes itself (a 400 for a missing Host, a 417 for an unknown Expect), so
// the request behind went upstream with the secret whenever the agent did not read fast enough for the close to
// come first.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

function stuckAgent(mode: 'local' | 'node', fill: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [path.join(__dirname, '../fixtures/stuck-agent.py'), mode, String(h.proxyPort), PLACEHOLDER, String(fill)], { stdio: 'ignore' });
    p.once('exit', resolve);
    p.once('error', reject);
  });
}

/** Nothing of the request behind the closing answer reached the upstream, nor was it decided (no audit record). */
async function nothingBehind(id: string): Promise<void> {
  await waitFor(() => false, 300);
  expect(h.plainUpstream.requests.filter((r) => r.url.includes(id)).map((r) => r.headers.authorization)).toEqual([]);
  expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && JSON.stringify(r.destination ?? '').includes('plain.example.test'))).toEqual([]);
}

describe('requests pipelined behind an answer that closes the connection', () => {
  it('behind the health endpoint\'s 404, never goes upstream, even when the agent does not read', async () => {
    // 300 health answers fill the agent's tiny, unread receive buffer, then an unknown local path.
    expect(await stuckAgent('local', 300)).toBe(0);
    await nothingBehind('behind-local');
  });

  it('behind Node\'s own 400 for a missing Host (after 400 of its own 417s), never goes upstream, even when the agent does not read', async () => {
    expect(await stuckAgent('node', 400)).toBe(0);
    await nothingBehind('behind-node');
  });
});

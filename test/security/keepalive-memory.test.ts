import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// An agent that keeps one connection open and sends requests on it for days must not grow keyswap's memory with
// every request. Measured on the live process: V8 writes a heap snapshot (after a full collection, so only what
// is still reachable) on a signal, and the test counts the objects in it.
let h: Harness;
// An upstream of its own: the harness's keeps a copy of the audit log per request (for K5 checks), which over
// thousands of requests is the test's own memory growing, not keyswap's.
let quiet: Upstream;
beforeAll(async () => {
  const testCa = createTestCa();
  quiet = await startUpstream({ tls: testCa.issue(['quiet.example.test']) });
  h = await startHarness({
    testCa,
    env: { NODE_OPTIONS: '--heapsnapshot-signal=SIGTTIN' },
    resolve: { 'quiet.example.test:443': `127.0.0.1:${quiet.port}` },
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: quiet.example.test } ]
`,
  });
});
afterAll(async () => {
  await h.close();
  await quiet.close();
});

/** Objects reachable in keyswap right now, by constructor name (a snapshot taken after a full GC). */
async function liveObjects(): Promise<Map<string, number>> {
  // The snapshot lands in keyswap's working directory: the harness runs it in h.dir.
  const before = new Set(readdirSync(h.dir));
  process.kill(h.child.pid as number, 'SIGTTIN');
  let file: string | undefined;
  expect(await waitFor(() => (file = readdirSync(h.dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f))) !== undefined, 30_000)).toBe(true);
  // V8 writes the file as it walks the heap: it is complete once it parses.
  let snapshot: { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] } | undefined;
  await waitFor(() => {
    try {
      snapshot = JSON.parse(readFileSync(path.join(h.dir, file as string), 'utf8'));
      return true;
    } catch {
      return false;
    }
  }, 30_000, 200);
  // The heap holds the secret: the file goes as soon as it is read.
  rmSync(path.join(h.dir, file as string));
  const s = snapshot as NonNullable<typeof snapshot>;
  const width = s.snapshot.meta.node_fields.length;
  const objectType = s.snapshot.meta.node_types[0].indexOf('object');
  const counts = new Map<string, number>();
  for (let i = 0; i < s.nodes.length; i += width) {
    if (s.nodes[i] !== objectType) continue;
    const name = s.strings[s.nodes[i + 1] as number] as string;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

describe('memory on a long-lived keep-alive connection', () => {
  it('does not grow with the number of requests the connection has carried (was: two promises kept per request until the connection closed), and holds none of them once idle', async () => {
    const agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem }, connections: 1 });
    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const res = await request('https://quiet.example.test/v1/echo', { dispatcher: agent, method: 'POST', headers: { authorization: `Bearer ${PLACEHOLDER}` }, body: '{}' });
        expect(res.statusCode).toBe(200);
        await res.body.text();
        quiet.requests.length = 0;
      }
    };
    try {
      await send(200);
      const early = await liveObjects();
      await send(2000);
      const late = await liveObjects();
      // Same connection throughout: what one request leaves behind shows up 2000 times over.
      for (const name of ['Promise', 'Object', 'Array']) expect({ name, grew: (late.get(name) ?? 0) - (early.get(name) ?? 0) }).toEqual({ name, grew: expect.toSatisfy((n: number) => n < 400) });
      // And an idle connection holds none of its requests: no exchange, no response, no upstream request stays
      // reachable once the answer is out (was: the connection's first request, through listeners made in its scope).
      expect(['Exchange', 'ServerResponse', 'IncomingMessage', 'ClientRequest'].map((name) => [name, late.get(name) ?? 0])).toEqual(['Exchange', 'ServerResponse', 'IncomingMessage', 'ClientRequest'].map((name) => [name, 0]));
    } finally {
      await agent.close();
    }
  }, 120_000);
});

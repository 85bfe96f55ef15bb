import type http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Request, h2Via } from '../../helpers/h2-client.js';
import { type Harness } from '../../helpers/harness.js';
import { rssBytes } from '../../helpers/process-memory.js';
import { startRecorder, type Recorded } from './servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack: under a tool policy every request body to the MCP server is held whole in keyswap's memory until it ends
 * (up to 4 MiB, for up to upload_max_seconds, 300 by default, kept alive by one byte every upload_idle_seconds).
 * Nothing bounds how many are held at once: one HTTP/2 connection carries 100 streams, and an agent may open any
 * number of connections. Here two connections' 200 streams each send just under 4 MiB and never end: keyswap holds
 * ~800 MiB (measured: ~430 MiB per connection; a few more take the process down for every agent).
 * Without a tool policy the same bodies stream through (and wait in flow control), costing keyswap next to nothing.
 */
const PH = 'mcp-PLACEHOLDER-mem-0123456789abcdef';
const TOKEN = `mem-mcp-token-${'c4n4ry'.repeat(4)}`;

let h: Harness;
let remote: Recorded;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, close } = await behindKeyswap('memmcp.example.test', (tls) => startRecorder(tls), {
    secretValues: { MEM_MCP: TOKEN },
    secrets: `
  MEM_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {MEM_MCP}" }
    bindings:
      - { host: memmcp.example.test, mcp: { tools: [search_issues] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

const rss = (): number => rssBytes(h.child.pid as number);

describe('MCP tool policy: bodies held in memory', () => {
  it('200 streams on two HTTP/2 connections, each just under 4 MiB and never ended, do not make keyswap hold ~800 MiB', async () => {
    const before = rss();
    const sessions: http2.ClientHttp2Session[] = [];
    const streams: http2.ClientHttp2Stream[] = [];
    const written: Promise<void>[] = [];
    const piece = Buffer.alloc(256 * 1024, 0x20); // JSON whitespace: a body that could still become valid
    const perStream = 4 * 1024 * 1024 - 64 * 1024;
    let refused = 0;
    for (let c = 0; c < 2; c++) {
      const session = await h2Via(h, 'memmcp.example.test');
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      sessions.push(session);
      for (let i = 0; i < 100; i++) {
        const s = session.request({ ':method': 'POST', ':path': '/mcp', authorization: `Bearer ${PH}`, 'content-type': 'application/json' }, { endStream: false });
        s.on('error', () => {});
        // An answer before the body ended is a refusal: this stream is done.
        let answered = false;
        const done = new Promise<void>((r) => { s.once('response', () => { answered = true; refused++; r(); }); s.once('close', () => r()); });
        streams.push(s);
        written.push((async () => {
          for (let sent = 0; sent < perStream && !s.destroyed && !answered; sent += piece.length) {
            if (!s.write(piece.subarray(0, Math.min(piece.length, perStream - sent)))) await Promise.race([new Promise((r) => s.once('drain', r)), done]);
          }
        })());
      }
    }
    // Bounded: 60 s for everything written (or refused).
    await Promise.race([Promise.all(written), new Promise((r) => setTimeout(r, 60_000))]);
    await new Promise((r) => setTimeout(r, 1_000));
    const grown = rss() - before;
    for (const s of streams) s.close();
    for (const session of sessions) session.close();
    expect(h.child.exitCode).toBeNull();
    expect({ grownMiB: Math.round(grown / 2 ** 20), under256: grown < 256 * 2 ** 20 }).toMatchObject({ under256: true });
    expect(refused).toBeGreaterThan(0);
  }, 120_000);

  it('keyswap still serves afterwards', async () => {
    const session = await h2Via(h, 'memmcp.example.test');
    const r = await h2Request(session, { ':method': 'POST', ':path': '/mcp', authorization: `Bearer ${PH}`, 'content-type': 'application/json' }, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"}}');
    session.close();
    expect(r.status).toBe(200);
  });
});

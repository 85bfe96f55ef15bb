import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// Found attacking issue #33's fixes: a request pipelined behind a slow answer is decided (its secrets rendered) when
// it is parsed, then waits its turn. A reload that removes its binding meanwhile must still stop it: what goes
// upstream is checked against the configuration in force when it goes.
let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h.close(); });

const reloads = (): number => h.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length;

describe('a request waiting behind another is checked again when its turn comes', () => {
  it('pipelined behind a 64 MiB answer the agent does not read, then its binding removed by a reload: the secret never goes upstream', async () => {
    const sock = await rawTlsVia(h, 'api.example.test');
    sock.pause(); // not read: the first answer holds the connection, the second request waits behind it
    sock.write('GET /v1/big?mb=64 HTTP/1.1\r\nHost: api.example.test\r\n\r\n'
      + `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 1000));
    const cfg = path.join(h.dir, 'keyswap.yaml');
    const before = reloads();
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('paths: ["/v1/**"]', 'paths: ["/v2/**"]'));
    h.child.kill('SIGHUP');
    expect(await waitFor(() => reloads() > before, 5000)).toBe(true);
    let tail = '';
    sock.on('data', (c: Buffer) => { tail = (tail + c.toString('latin1')).slice(-4096); });
    const ended = new Promise((r) => { sock.once('close', r); sock.once('end', r); });
    sock.resume();
    await Promise.race([ended, new Promise((r) => setTimeout(r, 15_000))]);
    sock.destroy();
    const carried = h.upstream.requests.filter((r) => String(r.headers.authorization).includes(h.canary));
    expect(carried.map((r) => r.url)).toEqual([]);
    expect(tail).toMatch(/HTTP\/1\.1 (403|421) /);
    expect(tail).not.toContain(h.canary);
  }, 40_000);
});

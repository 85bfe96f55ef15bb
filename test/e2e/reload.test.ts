import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { exchange, rawTlsVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

let h: Harness;
let configPath: string;
beforeAll(async () => {
  h = await startHarness();
  configPath = path.join(h.dir, 'keyswap.yaml');
});
afterAll(async () => {
  await h.close();
});

async function reload(): Promise<Record<string, unknown>> {
  const before = h.auditRecords().filter((r) => r.type === 'config_reload').length;
  h.child.kill('SIGHUP');
  await waitFor(() => h.auditRecords().filter((r) => r.type === 'config_reload').length > before);
  return h.auditRecords().filter((r) => r.type === 'config_reload').at(-1) as Record<string, unknown>;
}

describe('reload (SIGHUP)', () => {
  it('rules are evaluated per request: a reload mid-connection applies to the next request on that connection', async () => {
    const socket = await rawTlsVia(h, 'api.example.test');
    const request = `GET /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`;
    socket.write(request);
    await waitFor(() => h.upstream.requests.length === 1);
    expect(h.upstream.requests[0]?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // Narrow the binding to POST only, on disk, and reload while the connection stays open.
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('methods: [GET, POST]', 'methods: [POST]'));
    expect(await reload()).toMatchObject({ ok: true, errors: [] });
    await exchange(socket, `GET /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests[1]?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });

  it('a broken file changes nothing: the running config stays, and the reload is audited with the error', async () => {
    const good = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, good.replace('host: api.example.test, methods', 'host: API.example.test, methods'));
    const event = await reload();
    expect(event.ok).toBe(false);
    expect(String((event.errors as string[])[0])).toContain('must be lower-case: api.example.test');
    writeFileSync(configPath, good);
    expect(h.child.exitCode).toBeNull();
  });

  it('keyswap reload validates the file, signals the running keyswap, and waits for the outcome: exit 1 when refused', async () => {
    // Not blocking: the harness reads keyswap's output on this event loop while the reload waits.
    const run = async () => {
      const r = await cliCollect(['reload', '--config', configPath]);
      return { status: r.code, stdout: r.stdout };
    };
    const ok = await run();
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(`reload requested (pid ${h.child.pid})\nreload applied\n`);
    const good = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, good.replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1'));
    const refused = await run();
    writeFileSync(configPath, good);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain('reload refused; the running configuration stays:\n  listen changed; restart keyswap to apply\n');
  });

  it('a change that needs new resources (the listen address) is refused with "restart to apply"', async () => {
    const good = readFileSync(configPath, 'utf8');
    writeFileSync(configPath, good.replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1'));
    const event = await reload();
    expect(event).toMatchObject({ ok: false, errors: ['listen changed; restart keyswap to apply'] });
    writeFileSync(configPath, good);
  });
});

import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { curlVia, rawTlsVia } from '../helpers/clients.js';
import { cli } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

function serveWith(config: string): { status: number | null; stdout: string; stderr: string; file: string } {
  const file = tempWorld('cfg').write('keyswap.yaml', config);
  const r = cli(['serve', '--config', file], { timeoutMs: 15_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, file };
}

describe('keyswap serve lifecycle', () => {
  it('refuses an invalid config with exit 2, naming file:line: field, without listening', () => {
    const r = serveWith('version: 1\nlisten: 127.0.0.1:0\nsecrets:\n  K:\n    placeholder: "short"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: API.example.test } ]\n');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${r.file}:5: secrets.K.placeholder: must be at least 24 characters`);
    expect(r.stderr).toContain(`${r.file}:7: secrets.K.bindings[0].host: must be lower-case: api.example.test`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for a user mistake
    expect(r.stdout).not.toContain('listening');
  });

  it('refuses a non-loopback listen address with exit 2 unless --allow-non-loopback', () => {
    const r = serveWith('version: 1\nlisten: 0.0.0.0:0\nbackend: { type: env }\nsecrets: {}\n');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('not a loopback address');
  });

  it('SIGTERM drains, records proxy_stop and exits 0', async () => {
    const h = await startHarness();
    try {
      expect(await h.stop()).toBe(0);
      const types = h.auditRecords().map((r) => r.type);
      expect(types[0]).toBe('proxy_start');
      expect(types[types.length - 1]).toBe('proxy_stop');
      const verify = cli(['audit', 'verify', '--config', path.join(h.dir, 'keyswap.yaml'), h.auditPath]);
      expect(verify.status).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('a flag keyswap does not know, or one missing its value, is one plain sentence and exit 2', () => {
    const ks = (...args: string[]) => cli(args);
    expect(ks('secret', '--bogus').stderr).toBe("keyswap: unknown option --bogus\nRun 'keyswap help' for usage.\n");
    const missing = ks('serve', '--config');
    expect([missing.status, missing.stderr.split('\n')[0]]).toEqual([2, 'keyswap: option --config needs a value']);
    expect(ks('reload', 'extra').stderr.split('\n')[0]).toBe("keyswap: unexpected argument 'extra'");
  });

  it('a command keyswap does not have is exit 2 naming it, even one spelled like a built-in property (was: an internal error)', () => {
    for (const name of ['bogus', 'constructor', 'toString', '__proto__']) {
      const r = cli([name]);
      expect([r.status, r.stderr.split('\n')[0]]).toEqual([2, `keyswap: unknown command '${name}'`]);
    }
  });

  it('a second serve on the same audit log exits 1 with one sentence naming the running keyswap', async () => {
    const h = await startHarness();
    try {
      const second = cli(['serve', '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir, env: { KEYSWAP_SECRET_TEST_API_KEY: 'x' }, timeoutMs: 20_000 });
      expect(second.status).toBe(1);
      expect(second.stderr.trim()).toBe(`keyswap: audit log ${h.auditPath} is being written by another keyswap (process ${h.child.pid}); stop it, or give this one its own audit.path`);
    } finally {
      await h.close();
    }
  });

  it('kill -9 under traffic leaves a log that still verifies, and the next start continues its chain', async () => {
    const h = await startHarness();
    try {
      await Promise.all(Array.from({ length: 20 }, () => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })));
      h.child.kill('SIGKILL');
      await h.stop();
      const verify = cli(['audit', 'verify', '--config', path.join(h.dir, 'keyswap.yaml'), h.auditPath]);
      expect(verify.status).toBe(0);
      expect(h.auditRecords().filter((r) => r.type === 'inject_decision')).toHaveLength(20);
    } finally {
      await h.close();
    }
  });

  it('the CA key is 0600 in a 0700 state dir, the CA is CA:true pathlen 0, leaf serials are positive (K7)', async () => {
    const h = await startHarness();
    try {
      const state = path.join(h.dir, 'state');
      expect(statSync(state).mode & 0o777).toBe(0o700);
      expect(statSync(path.join(state, 'ca-key.pem')).mode & 0o777).toBe(0o600);
      const ca = new X509Certificate(h.caPem);
      expect(ca.ca).toBe(true);
      expect(ca.serialNumber.length).toBeGreaterThanOrEqual(31);
      expect(Number.parseInt(ca.serialNumber.slice(0, 2), 16)).toBeLessThan(0x80);
      const socket = await rawTlsVia(h, 'api.example.test');
      const leaf = (socket as tls.TLSSocket).getPeerX509Certificate();
      socket.destroy();
      expect(leaf?.checkIssued(ca)).toBe(true);
      expect(leaf?.checkHost('api.example.test')).toBe('api.example.test');
      expect(Number.parseInt(leaf?.serialNumber.slice(0, 2) ?? 'ff', 16)).toBeLessThan(0x80);
      const days = (Date.parse(leaf?.validTo ?? '') - Date.now()) / 86_400_000;
      expect(days).toBeLessThanOrEqual(90);
    } finally {
      await h.close();
    }
  });
});

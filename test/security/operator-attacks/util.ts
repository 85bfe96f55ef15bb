import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { waitFor, type Harness } from '../../helpers/harness.js';

export { sha } from '../../helpers/operator-cli.js';

export const controlSock = (h: Harness): string => path.join(h.dir, 'state', 'control.sock');

/** One JSON call to the running keyswap's control socket (what the CLI and the console both reach). */
export function control(h: Harness, method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ socketPath: controlSock(h), method, path: route, agent: false, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } }, (res) => {
      let got = '';
      res.on('data', (c: Buffer) => { got += c.toString('utf8'); });
      res.on('end', () => {
        let parsed: Record<string, unknown> = {};
        try { parsed = JSON.parse(got) as Record<string, unknown>; } catch { parsed = { raw: got }; }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** A session as `keyswap run` opens one: the stream stays open (the session lives) until `end()`. */
export function openSession(h: Harness, body: Record<string, unknown>): Promise<{ name: string; token: string; end: () => void }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = http.request({ socketPath: controlSock(h), method: 'POST', path: '/v1/sessions', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } }, (res) => {
      let got = '';
      const onData = (c: Buffer): void => {
        got += c.toString('utf8');
        const nl = got.indexOf('\n');
        if (nl < 0) return;
        res.off('data', onData);
        const a = JSON.parse(got.slice(0, nl)) as { name?: string; token?: string; error?: string };
        if (res.statusCode !== 200 || a.name === undefined || a.token === undefined) {
          reject(new Error(`session refused: ${res.statusCode} ${got}`));
          return;
        }
        resolve({ name: a.name, token: a.token, end: () => { req.destroy(); res.destroy(); } });
      };
      res.on('data', onData);
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** One request on a fresh decrypted connection (HTTP/1.1, Connection: close); the whole answer. */
export async function agentGet(h: Harness, auth: string | null, request: string, host = 'api.example.test'): Promise<string> {
  let t;
  try {
    t = await rawTlsVia(h, host, 443, {}, auth);
  } catch (err) {
    return (err as Error).message;
  }
  let got = '';
  t.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  t.on('error', () => {});
  t.write(request);
  await new Promise<void>((r) => {
    const timer = setTimeout(() => { t.destroy(); r(); }, 10_000);
    t.once('close', () => { clearTimeout(timer); r(); });
  });
  return got;
}

const reloads = (h: Harness): number => h.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length;

/** Edits the config and reloads (SIGHUP), once the reload is recorded as ok. */
export async function reloadWith(h: Harness, edit: (yaml: string) => string): Promise<void> {
  const file = path.join(h.dir, 'keyswap.yaml');
  const before = reloads(h);
  const next = edit(readFileSync(file, 'utf8'));
  writeFileSync(file, next);
  h.child.kill('SIGHUP');
  expect(await waitFor(() => reloads(h) > before, 8000), JSON.stringify(h.auditRecords().filter((r) => r.type === 'config_reload'))).toBe(true);
}

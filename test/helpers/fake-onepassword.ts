import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCa } from './test-ca.js';

/*
 * A local 1Password Connect server speaking the documented REST API (developer.1password.com/docs/connect/api-reference):
 * GET /v1/vaults (with `filter=name eq "…"`), /v1/vaults/{id}, /v1/vaults/{id}/items (with `filter=title eq "…"`),
 * /v1/vaults/{id}/items/{itemId} with `fields` (id, label, value, purpose, type); Bearer tokens, 401 for a bad
 * token, 403 for a vault the token may not read, 404 `{status, message}`; and GET /heartbeat.
 */
export interface FakeOnePassword {
  readonly url: string;
  readonly token: string;
  readonly calls: string[];
  mode: 'ok' | 'down';
  vault(name: string): string;
  /** Adds (or replaces by id) an item; returns its id. */
  item(vaultId: string, title: string, fields: { label: string; value: string; purpose?: string }[], id?: string): string;
  /** Tokens allowed to read each vault (default: the one token reads every vault). */
  readonly forbidden: Set<string>;
  close(): Promise<void>;
}

const newId = (): string => randomBytes(16).toString('hex').slice(0, 26);

export async function startFakeOnePassword(ca: TestCa): Promise<FakeOnePassword> {
  const vaults = new Map<string, { name: string; items: Map<string, { title: string; fields: { id: string; label: string; value: string; purpose?: string; type: string }[] }> }>();
  const tls = ca.issue(['connect.example.test', '127.0.0.1']);
  const fake: FakeOnePassword = {
    url: '',
    token: `eyJ.connect-token.${randomBytes(8).toString('hex')}`,
    calls: [],
    mode: 'ok',
    vault(name) {
      const id = newId();
      vaults.set(id, { name, items: new Map() });
      return id;
    },
    item(vaultId, title, fields, id = newId()) {
      vaults.get(vaultId)?.items.set(id, { title, fields: fields.map((f) => ({ id: newId(), type: f.purpose === 'PASSWORD' ? 'CONCEALED' : 'STRING', ...f })) });
      return id;
    },
    forbidden: new Set(),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://connect');
    fake.calls.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (fake.mode === 'down') return send(503, { status: 503, message: 'service unavailable' });
    if (url.pathname === '/heartbeat') { res.end('.'); return; }
    if (req.headers.authorization !== `Bearer ${fake.token}`) return send(401, { status: 401, message: 'Invalid token signature' });
    const filter = url.searchParams.get('filter');
    const eq = filter === null ? null : /^(name|title) eq "(.*)"$/.exec(filter)?.[2]?.replaceAll('\\"', '"') ?? '\u0000';
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1' || parts[1] !== 'vaults') return send(404, { status: 404, message: 'Not found' });
    if (parts.length === 2) return send(200, [...vaults].filter(([, v]) => eq === null || v.name === eq).map(([id, v]) => ({ id, name: v.name })));
    const vault = vaults.get(parts[2] as string);
    if (!vault) return send(404, { status: 404, message: 'Invalid Vault UUID' });
    if (fake.forbidden.has(parts[2] as string)) return send(403, { status: 403, message: 'Authorization: vault access denied' });
    if (parts.length === 3) return send(200, { id: parts[2], name: vault.name });
    if (parts[3] !== 'items') return send(404, { status: 404, message: 'Not found' });
    if (parts.length === 4) return send(200, [...vault.items].filter(([, i]) => eq === null || i.title === eq).map(([id, i]) => ({ id, title: i.title, vault: { id: parts[2] } })));
    const item = vault.items.get(parts[4] as string);
    if (!item) return send(404, { status: 404, message: 'item not found' });
    return send(200, { id: parts[4], title: item.title, vault: { id: parts[2] }, category: 'API_CREDENTIAL', fields: item.fields });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (fake as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local server speaking the Bitwarden Secrets Manager protocol, written from the project's protocol notes, so
 * the real SDK can be tested against it: access-token login, list, get-by-ids, single get. Switches make it hang,
 * fail with a status, or rotate a value.
 */
export interface FakeBws {
  readonly url: string;
  readonly organizationId: string;
  readonly accessToken: string;
  /** Requests seen, by route name (login, list, get-by-ids, get). */
  readonly calls: Record<string, number>;
  mode: 'ok' | 'hang' | { status: number };
  set(name: string, value: string): string;
  /** Adds a secret under a new id even if the name exists (BWS names are not unique). */
  add(name: string, value: string): string;
  /** The value stored under a name now (what an update wrote), for assertions. */
  valueOf(name: string): string | undefined;
  close(): Promise<void>;
}

interface Stored { id: string; name: string; value: string; revision: string }

function encString(key64: Buffer, plain: string): string {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', key64.subarray(0, 32), iv);
  const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  const mac = createHmac('sha256', key64.subarray(32, 64)).update(Buffer.concat([iv, ct])).digest();
  return `2.${iv.toString('base64')}|${ct.toString('base64')}|${mac.toString('base64')}`;
}

/** The inverse of encString: an update from the SDK arrives encrypted under the organization key. */
function decString(key64: Buffer, enc: string): string {
  const m = /^2\.([^|]+)\|([^|]+)\|(.+)$/.exec(enc);
  if (!m) throw new Error('not an EncString of type 2');
  const [iv, ct, mac] = [Buffer.from(m[1] ?? '', 'base64'), Buffer.from(m[2] ?? '', 'base64'), Buffer.from(m[3] ?? '', 'base64')];
  const expected = createHmac('sha256', key64.subarray(32, 64)).update(Buffer.concat([iv, ct])).digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new Error('EncString MAC mismatch');
  const d = createDecipheriv('aes-256-cbc', key64.subarray(0, 32), iv);
  return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
}

const b64url = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

export async function startFakeBws(): Promise<FakeBws> {
  const organizationId = randomUUID();
  const tokenId = randomUUID();
  const clientSecret = randomBytes(15).toString('base64url');
  const seed = randomBytes(16);
  const accessToken = `0.${tokenId}.${clientSecret}:${seed.toString('base64')}`;
  const tokenKey = Buffer.from(hkdfSync('sha256', seed, 'bitwarden-accesstoken', 'sm-access-token', 64));
  const orgKey = randomBytes(64);
  const secrets = new Map<string, Stored>();
  const calls: Record<string, number> = { login: 0, list: 0, 'get-by-ids': 0, get: 0, update: 0 };
  const sockets = new Set<import('node:net').Socket>();

  const secretJson = (s: Stored): Record<string, unknown> => ({
    object: 'secret', id: s.id, organizationId, key: encString(orgKey, s.name), value: encString(orgKey, s.value),
    note: encString(orgKey, ''), creationDate: s.revision, revisionDate: s.revision, projects: [],
  });

  const fake: FakeBws = {
    url: '',
    organizationId,
    accessToken,
    calls,
    mode: 'ok',
    set(name, value) {
      const existing = [...secrets.values()].find((s) => s.name === name);
      const s: Stored = { id: existing?.id ?? randomUUID(), name, value, revision: new Date().toISOString() };
      secrets.set(s.id, s);
      return s.id;
    },
    add(name, value) {
      const s: Stored = { id: randomUUID(), name, value, revision: new Date().toISOString() };
      secrets.set(s.id, s);
      return s.id;
    },
    valueOf(name) {
      return [...secrets.values()].find((s) => s.name === name)?.value;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const route =
        url.pathname === '/identity/connect/token' ? 'login'
        : url.pathname === `/api/organizations/${organizationId}/secrets` ? 'list'
        : url.pathname === '/api/secrets/get-by-ids' ? 'get-by-ids'
        : url.pathname.startsWith('/api/secrets/') && req.method === 'PUT' ? 'update'
        : url.pathname.startsWith('/api/secrets/') ? 'get'
        : 'unknown';
      calls[route] = (calls[route] ?? 0) + 1;
      if (fake.mode === 'hang') return; // never answers: the SDK has no timeout of its own
      const send = (status: number, json: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (typeof fake.mode === 'object') return send(fake.mode.status, { message: 'fake failure' });
      if (route === 'login') {
        const form = new URLSearchParams(body);
        if (form.get('client_id') !== tokenId || form.get('client_secret') !== clientSecret) {
          return send(400, { error: 'invalid_client', error_description: 'invalid_client', ErrorModel: { Message: 'invalid_client', Object: 'error' } });
        }
        const jwt = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ exp: Math.floor(Date.now() / 1000) + 3600, sub: tokenId, scope: ['api.secrets'], organization: organizationId })}.sig`;
        return send(200, { access_token: jwt, expires_in: 3600, token_type: 'Bearer', scope: 'api.secrets', encrypted_payload: encString(tokenKey, JSON.stringify({ encryptionKey: orgKey.toString('base64') })) });
      }
      if (!(req.headers.authorization ?? '').startsWith('Bearer ')) return send(401, { message: 'unauthorized' });
      if (route === 'list') {
        return send(200, {
          object: 'SecretsWithProjectsList',
          secrets: [...secrets.values()].map((s) => ({ id: s.id, organizationId, key: encString(orgKey, s.name), creationDate: s.revision, revisionDate: s.revision, projects: [] })),
          projects: [],
        });
      }
      if (route === 'get-by-ids') {
        const ids = (JSON.parse(body) as { ids: string[] }).ids;
        return send(200, { object: 'list', data: ids.flatMap((id) => (secrets.has(id) ? [secretJson(secrets.get(id) as Stored)] : [])), continuationToken: null });
      }
      if (route === 'update') {
        const s = secrets.get(url.pathname.slice('/api/secrets/'.length));
        if (s === undefined) return send(404, { message: 'Resource not found.' });
        const update = JSON.parse(body) as { key: string; value: string };
        const next: Stored = { id: s.id, name: decString(orgKey, update.key), value: decString(orgKey, update.value), revision: new Date().toISOString() };
        secrets.set(s.id, next);
        return send(200, secretJson(next));
      }
      if (route === 'get') {
        const s = secrets.get(url.pathname.slice('/api/secrets/'.length));
        return s ? send(200, secretJson(s)) : send(404, { message: 'Resource not found.' });
      }
      send(404, { message: 'Resource not found.' });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (fake as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

import { randomBytes, createCipheriv, createDecipheriv } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCa } from './test-ca.js';

/*
 * A local server speaking the parts of HashiCorp Vault's HTTP API keyswap uses, as documented
 * (developer.hashicorp.com/vault/api-docs): KV version 2 read (data + metadata, versions, soft delete → 404 with
 * metadata), write and LIST; token lookup-self and renew-self (leases capped by a max TTL); AppRole and Kubernetes
 * logins; X-Vault-Namespace; `{"errors":[…]}` bodies with 400/403/404/503; transit encrypt/decrypt with key
 * versions. Policies are per token: the paths it may read.
 */

export interface FakeVaultToken {
  readonly readable: readonly string[];
  ttlSeconds: number;
  maxTtlSeconds: number;
  renewable: boolean;
}

interface LiveToken extends FakeVaultToken {
  issuedAtMs: number;
  expiresAtMs: number;
}

interface Version { readonly data: Record<string, unknown> | null; readonly created: string; deleted: string }

export interface FakeVault {
  readonly url: string;
  /** Calls seen, by route (`kv-read`, `lookup-self`, `renew-self`, `approle-login`, `kubernetes-login`, `transit-encrypt`, …). */
  readonly calls: Record<string, number>;
  /** Headers of every request (for namespace and token checks), newest last. */
  readonly seen: { readonly path: string; readonly namespace: string | undefined }[];
  sealed: boolean;
  /** Only requests with this X-Vault-Namespace reach the data (null: no namespace). */
  namespace: string | null;
  /** Puts a new version of `mount/path` (KV v2 write). */
  put(mount: string, secretPath: string, data: Record<string, unknown>): number;
  /** Soft-deletes the current version. */
  remove(mount: string, secretPath: string): void;
  /** A token the server accepts; returns it. */
  token(spec: FakeVaultToken): string;
  revoke(token: string): void;
  /** Narrows every token's policy: `mount/data/path` reads answer 403 from now on. */
  deny(apiPath: string): void;
  approle(roleId: string, secretId: string, token: FakeVaultToken): void;
  kubernetesRole(role: string, jwt: string, token: FakeVaultToken): void;
  /** A transit key (a new version on each call); returns the version. */
  transitKey(name: string): number;
  close(): Promise<void>;
}

export async function startFakeVault(ca: TestCa): Promise<FakeVault> {
  const kv = new Map<string, Version[]>();
  const tokens = new Map<string, LiveToken>();
  const denied = new Set<string>();
  const approles = new Map<string, { secretId: string; token: FakeVaultToken }>();
  const k8sRoles = new Map<string, { jwt: string; token: FakeVaultToken }>();
  const transit = new Map<string, Buffer[]>();
  const calls: Record<string, number> = {};
  const seen: { path: string; namespace: string | undefined }[] = [];
  const count = (route: string): void => { calls[route] = (calls[route] ?? 0) + 1; };

  const issue = (spec: FakeVaultToken): string => {
    const t = `hvs.${randomBytes(18).toString('base64url')}`;
    const now = Date.now();
    tokens.set(t, { ...spec, issuedAtMs: now, expiresAtMs: spec.ttlSeconds === 0 ? Number.POSITIVE_INFINITY : now + spec.ttlSeconds * 1000 });
    return t;
  };
  const authBody = (t: string): unknown => {
    const live = tokens.get(t) as LiveToken;
    return { auth: { client_token: t, accessor: 'acc', policies: ['default'], lease_duration: Math.max(0, Math.round((live.expiresAtMs - Date.now()) / 1000)), renewable: live.renewable } };
  };

  const tls = ca.issue(['vault.example.test', '127.0.0.1']);
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://vault');
      const ns = req.headers['x-vault-namespace'] as string | undefined;
      seen.push({ path: url.pathname, namespace: ns });
      const send = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const errors = (status: number, ...messages: string[]): void => send(status, { errors: messages });
      if (vault.sealed) return errors(503, 'Vault is sealed');
      const json = (): Record<string, unknown> => { try { return JSON.parse(body || '{}') as Record<string, unknown>; } catch { return {}; } };
      const p = url.pathname.replace(/^\/v1\//, '');

      if (req.method === 'POST' && p === 'auth/approle/login') {
        count('approle-login');
        const { role_id: roleId, secret_id: secretId } = json();
        const role = approles.get(String(roleId));
        if (!role || role.secretId !== secretId) return errors(400, 'invalid role or secret ID');
        return send(200, authBody(issue(role.token)));
      }
      if (req.method === 'POST' && p === 'auth/kubernetes/login') {
        count('kubernetes-login');
        const { role: name, jwt } = json();
        const role = k8sRoles.get(String(name));
        if (!role || role.jwt !== jwt) return errors(403, 'permission denied');
        return send(200, authBody(issue(role.token)));
      }

      const token = req.headers['x-vault-token'] as string | undefined;
      const live = token === undefined ? undefined : tokens.get(token);
      if (token === undefined || live === undefined || Date.now() >= live.expiresAtMs) return errors(403, 'permission denied');
      if (req.method === 'GET' && p === 'auth/token/lookup-self') {
        count('lookup-self');
        return send(200, { data: { ttl: live.expiresAtMs === Number.POSITIVE_INFINITY ? 0 : Math.round((live.expiresAtMs - Date.now()) / 1000), renewable: live.renewable, policies: ['default'] } });
      }
      if (req.method === 'POST' && p === 'auth/token/renew-self') {
        count('renew-self');
        if (!live.renewable) return errors(400, 'lease is not renewable');
        // The lease grows by its TTL, never past issue time + max TTL.
        live.expiresAtMs = Math.min(Date.now() + live.ttlSeconds * 1000, live.issuedAtMs + live.maxTtlSeconds * 1000);
        return send(200, authBody(token));
      }
      if ((vault.namespace ?? undefined) !== ns) return errors(403, 'permission denied');

      const transitMatch = /^transit\/(encrypt|decrypt)\/([^/]+)$/.exec(p);
      if (req.method === 'POST' && transitMatch) {
        count(`transit-${transitMatch[1]}`);
        const keys = transit.get(transitMatch[2] as string);
        if (!keys) return errors(400, 'encryption key not found');
        const b = json();
        if (transitMatch[1] === 'encrypt') {
          const version = keys.length;
          const iv = randomBytes(12);
          const c = createCipheriv('aes-256-gcm', keys[version - 1] as Buffer, iv);
          const ct = Buffer.concat([c.update(Buffer.from(String(b.plaintext), 'base64')), c.final(), c.getAuthTag()]);
          return send(200, { data: { ciphertext: `vault:v${version}:${Buffer.concat([iv, ct]).toString('base64')}`, key_version: version } });
        }
        const m = /^vault:v(\d+):(.+)$/.exec(String(b.ciphertext));
        const key = m ? keys[Number(m[1]) - 1] : undefined;
        if (!m || !key) return errors(400, 'invalid ciphertext: no prefix');
        try {
          const raw = Buffer.from(m[2] as string, 'base64');
          const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
          d.setAuthTag(raw.subarray(raw.length - 16));
          const plain = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
          return send(200, { data: { plaintext: plain.toString('base64') } });
        } catch {
          return errors(400, 'cipher: message authentication failed');
        }
      }

      const kvMatch = /^([^/]+)\/(data|metadata)\/(.*)$/.exec(p);
      if (kvMatch) {
        const [, mount, kind, rest] = kvMatch as unknown as [string, string, string, string];
        const key = `${mount}/${decodeURIComponent(rest)}`;
        if (denied.has(`${mount}/data/${decodeURIComponent(rest)}`) || !live.readable.some((r) => key.startsWith(r))) return errors(403, '1 error occurred:\n\t* permission denied\n\n');
        if (kind === 'metadata' && (req.method === 'LIST' || url.searchParams.get('list') === 'true')) {
          count('kv-list');
          const prefix = key.endsWith('/') || rest === '' ? key : `${key}/`;
          const keys = [...kv.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).filter((k) => k !== '');
          return keys.length === 0 ? errors(404) : send(200, { data: { keys } });
        }
        if (kind === 'data' && req.method === 'GET') {
          count('kv-read');
          const versions = kv.get(key);
          const wanted = url.searchParams.get('version');
          const n = wanted === null || wanted === '0' ? versions?.length ?? 0 : Number(wanted);
          const v = versions?.[n - 1];
          if (!v) return errors(404);
          const metadata = { created_time: v.created, custom_metadata: null, deletion_time: v.deleted, destroyed: false, version: n };
          if (v.deleted !== '' || v.data === null) return send(404, { data: { data: null, metadata } });
          return send(200, { request_id: 'r', lease_id: '', renewable: false, lease_duration: 0, data: { data: v.data, metadata }, wrap_info: null, warnings: null, auth: null });
        }
        if (kind === 'data' && req.method === 'POST') {
          count('kv-write');
          const n = vault.put(mount, decodeURIComponent(rest), (json().data ?? {}) as Record<string, unknown>);
          return send(200, { data: { version: n } });
        }
      }
      return errors(404);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  const vault: FakeVault = {
    url: `https://127.0.0.1:${port}`,
    calls,
    seen,
    sealed: false,
    namespace: null,
    put(mount, secretPath, data) {
      const key = `${mount}/${secretPath}`;
      const versions = kv.get(key) ?? [];
      versions.push({ data, created: new Date().toISOString(), deleted: '' });
      kv.set(key, versions);
      return versions.length;
    },
    remove(mount, secretPath) {
      const v = kv.get(`${mount}/${secretPath}`)?.at(-1);
      if (v) v.deleted = new Date().toISOString();
    },
    token: issue,
    revoke(t) { tokens.delete(t); },
    deny(apiPath) { denied.add(apiPath); },
    approle(roleId, secretId, token) { approles.set(roleId, { secretId, token }); },
    kubernetesRole(role, jwt, token) { k8sRoles.set(role, { jwt, token }); },
    transitKey(name) {
      const keys = transit.get(name) ?? [];
      keys.push(randomBytes(32));
      transit.set(name, keys);
      return keys.length;
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  return vault;
}

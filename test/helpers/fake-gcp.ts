import { createCipheriv, createDecipheriv, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import type { TestCa } from './test-ca.js';

/*
 * A local Google Cloud endpoint speaking the documented REST surface of Secret Manager and Cloud KMS, as the
 * official Node clients call it with their HTTP/JSON transport: `GET /v1/projects/P/secrets/S/versions/V:access`
 * → `{ name, payload: { data } }`; `POST /v1/projects/…/cryptoKeys/K:encrypt|:decrypt` with base64 plaintext,
 * ciphertext and additionalAuthenticatedData; errors as `{ error: { code, message, status } }` (404 NOT_FOUND,
 * 403 PERMISSION_DENIED, 401 UNAUTHENTICATED, 400 INVALID_ARGUMENT, 503 UNAVAILABLE). A request must carry a
 * bearer JWT signed by the service account's key (the clients sign one themselves from a key file).
 */
export interface FakeGcp {
  readonly url: string;
  /** A service-account key file's JSON for the account this server trusts. */
  readonly serviceAccount: string;
  /** The same account's email with a key this server does not know. */
  readonly wrongServiceAccount: string;
  readonly calls: string[];
  mode: 'ok' | 'down';
  readonly denied: Set<string>;
  /** Adds a version of projects/P/secrets/S (returns its number). */
  addVersion(project: string, secret: string, data: string): number;
  cryptoKey(name: string): void;
  close(): Promise<void>;
}

export async function startFakeGcp(ca: TestCa): Promise<FakeGcp> {
  const email = 'keyswap@p-keyswap.iam.gserviceaccount.com';
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = (privateKey: typeof sa.privateKey): string => JSON.stringify({ type: 'service_account', project_id: 'p-keyswap', private_key_id: 'k1', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), client_email: email, client_id: '1', token_uri: 'https://oauth2.googleapis.com/token' });
  const secrets = new Map<string, string[]>();
  const keys = new Map<string, Buffer>();
  const tls = ca.issue(['secretmanager.googleapis.com', 'cloudkms.googleapis.com', '127.0.0.1']);
  const fake: FakeGcp = {
    url: '',
    serviceAccount: keyFile(sa.privateKey),
    wrongServiceAccount: keyFile(other.privateKey),
    calls: [],
    mode: 'ok',
    denied: new Set(),
    addVersion(project, secret, data) {
      const name = `projects/${project}/secrets/${secret}`;
      const versions = secrets.get(name) ?? [];
      versions.push(data);
      secrets.set(name, versions);
      return versions.length;
    },
    cryptoKey(name) { keys.set(name, randomBytes(32)); },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const publicKey = createPublicKey(sa.privateKey);
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      void (async () => {
        const send = (status: number, payload: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(payload));
        };
        const fail = (code: number, status: string, message: string): void => send(code, { error: { code, message, status } });
        const url = new URL(req.url ?? '/', 'https://gcp');
        fake.calls.push(`${req.method} ${url.pathname}`);
        if (fake.mode === 'down') return fail(503, 'UNAVAILABLE', 'The service is currently unavailable.');
        const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
        try {
          const { payload } = await jwtVerify(bearer ?? '', publicKey, { issuer: email });
          if (payload.sub !== email) throw new Error('sub');
        } catch {
          return fail(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
        }
        const access = /^\/v1\/(projects\/[^/]+\/secrets\/[^/]+)\/versions\/([^/:]+):access$/.exec(url.pathname);
        if (req.method === 'GET' && access) {
          const [, name, v] = access as unknown as [string, string, string];
          if (fake.denied.has(name)) return fail(403, 'PERMISSION_DENIED', `Permission 'secretmanager.versions.access' denied for resource '${name}/versions/${v}' (or it may not exist).`);
          const versions = secrets.get(name);
          const n = v === 'latest' ? versions?.length ?? 0 : Number(v);
          const data = versions?.[n - 1];
          if (data === undefined) return fail(404, 'NOT_FOUND', `Secret [${name}] not found or has no versions.`);
          return send(200, { name: `${name}/versions/${n}`, payload: { data: Buffer.from(data).toString('base64'), dataCrc32c: '0' } });
        }
        const crypt = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/:]+):(encrypt|decrypt)$/.exec(url.pathname);
        if (req.method === 'POST' && crypt) {
          const [, name, op] = crypt as unknown as [string, string, string];
          const key = keys.get(name);
          if (!key) return fail(404, 'NOT_FOUND', `CryptoKey ${name} not found.`);
          const b = JSON.parse(body || '{}') as { plaintext?: string; ciphertext?: string; additionalAuthenticatedData?: string };
          const aad = Buffer.from(b.additionalAuthenticatedData ?? '', 'base64');
          if (op === 'encrypt') {
            const iv = randomBytes(12);
            const c = createCipheriv('aes-256-gcm', key, iv);
            c.setAAD(aad);
            const ct = Buffer.concat([iv, c.update(Buffer.from(b.plaintext ?? '', 'base64')), c.final(), c.getAuthTag()]);
            return send(200, { name: `${name}/cryptoKeyVersions/1`, ciphertext: ct.toString('base64') });
          }
          try {
            const raw = Buffer.from(b.ciphertext ?? '', 'base64');
            const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
            d.setAAD(aad);
            d.setAuthTag(raw.subarray(raw.length - 16));
            return send(200, { plaintext: Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('base64') });
          } catch {
            return fail(400, 'INVALID_ARGUMENT', 'Decryption failed: the ciphertext is invalid.');
          }
        }
        return fail(404, 'NOT_FOUND', 'not found');
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (fake as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

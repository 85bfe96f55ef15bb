import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { sigv4Problem } from './sigv4-verifier.js';
import type { TestCa } from './test-ca.js';

/*
 * A local AWS Secrets Manager endpoint speaking the service's documented protocol (AWS JSON 1.1: POST /,
 * X-Amz-Target: secretsmanager.GetSecretValue, SigV4 for service `secretsmanager`), checked by the project's own
 * SigV4 verifier: GetSecretValue by name or ARN and stage (AWSCURRENT), SecretString or SecretBinary, and the
 * documented errors (ResourceNotFoundException, AccessDeniedException, UnrecognizedClientException,
 * InvalidSignatureException, InternalServiceError), each as `{"__type", "message"}`.
 */
export interface FakeAwsSecrets {
  readonly url: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly calls: { readonly target: string; readonly secretId: string; readonly region: string }[];
  /** 'ok', every call answered 500, or the socket closed without an answer. */
  mode: 'ok' | 'down';
  put(secretId: string, value: string | { binary: Buffer }): void;
  /** GetSecretValue on these ids answers AccessDeniedException. */
  readonly denied: Set<string>;
  close(): Promise<void>;
}

export async function startFakeAwsSecrets(ca: TestCa, region = 'eu-west-1'): Promise<FakeAwsSecrets> {
  const store = new Map<string, { versions: (string | { binary: Buffer })[] }>();
  const accessKeyId = 'AKIAKEYSWAPTEST00001';
  const secretAccessKey = 'fake-aws-secret-access-key-0123456789abcd';
  const tls = ca.issue(['secretsmanager.eu-west-1.amazonaws.com', '127.0.0.1']);
  const fake: FakeAwsSecrets = {
    url: '',
    accessKeyId,
    secretAccessKey,
    calls: [],
    mode: 'ok',
    put(secretId, value) {
      const e = store.get(secretId) ?? { versions: [] };
      e.versions.push(value);
      store.set(secretId, e);
    },
    denied: new Set(),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const send = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'req-1' });
        res.end(JSON.stringify(payload));
      };
      const fail = (status: number, type: string, message: string): void => send(status, { __type: type, message });
      if (fake.mode === 'down') return fail(500, 'InternalServiceError', 'An error occurred on the server side.');
      const target = String(req.headers['x-amz-target'] ?? '');
      const problem = sigv4Problem({ method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body }, secretAccessKey, accessKeyId);
      if (problem !== null) {
        return problem.startsWith('signed with access key id')
          ? fail(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
          : fail(400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
      }
      let input: { SecretId?: string; VersionStage?: string } = {};
      try { input = JSON.parse(body.toString()) as typeof input; } catch { return fail(400, 'SerializationException', 'bad json'); }
      const secretId = String(input.SecretId ?? '');
      fake.calls.push({ target, secretId, region: /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '' });
      if (target !== 'secretsmanager.GetSecretValue') return fail(400, 'UnknownOperationException', 'unknown operation');
      if (fake.denied.has(secretId)) return fail(400, 'AccessDeniedException', `User: arn:aws:iam::123456789012:user/keyswap is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secretId}`);
      const name = secretId.startsWith('arn:aws:secretsmanager:') ? secretId.split(':secret:')[1]?.replace(/-[A-Za-z0-9]{6}$/, '') ?? '' : secretId;
      const entry = store.get(name);
      if (!entry || (input.VersionStage ?? 'AWSCURRENT') !== 'AWSCURRENT') return fail(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      const value = entry.versions.at(-1) as string | { binary: Buffer };
      const arn = `arn:aws:secretsmanager:${region}:123456789012:secret:${name}-AbCdEf`;
      return send(200, {
        ARN: arn, Name: name, VersionId: `v-${entry.versions.length}`, VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000,
        ...(typeof value === 'string' ? { SecretString: value } : { SecretBinary: value.binary.toString('base64') }),
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (fake as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

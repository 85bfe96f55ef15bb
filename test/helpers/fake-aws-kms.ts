import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { sigv4Problem } from './sigv4-verifier.js';
import type { TestCa } from './test-ca.js';

/*
 * A local AWS KMS endpoint speaking the service's documented protocol (AWS JSON 1.1, X-Amz-Target:
 * TrentService.Encrypt / TrentService.Decrypt, SigV4 for service `kms`, blobs as base64): Encrypt binds the
 * encryption context, Decrypt refuses a changed blob or context (InvalidCiphertextException), an unknown key
 * (NotFoundException), a disabled key (DisabledException) and a principal without access (AccessDeniedException).
 */
export interface FakeAwsKms {
  readonly url: string;
  readonly arn: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly calls: string[];
  disabled: boolean;
  /** The plaintext inside a blob this server made (what the test greps every file for). */
  plaintextOf(blobBase64: string): Buffer;
  close(): Promise<void>;
}

export async function startFakeAwsKms(ca: TestCa): Promise<FakeAwsKms> {
  const arn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const master = randomBytes(32);
  const accessKeyId = 'AKIAKEYSWAPKMSTEST01';
  const secretAccessKey = 'fake-kms-secret-access-key-0123456789abcd';
  const seal = (plain: Buffer, context: string): Buffer => {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', master, iv);
    c.setAAD(Buffer.from(`${arn}|${context}`));
    return Buffer.concat([Buffer.from('KSKMS1'), iv, c.update(plain), c.final(), c.getAuthTag()]);
  };
  const open = (blob: Buffer, context: string): Buffer | null => {
    try {
      if (blob.subarray(0, 6).toString() !== 'KSKMS1') return null;
      const d = createDecipheriv('aes-256-gcm', master, blob.subarray(6, 18));
      d.setAAD(Buffer.from(`${arn}|${context}`));
      d.setAuthTag(blob.subarray(blob.length - 16));
      return Buffer.concat([d.update(blob.subarray(18, blob.length - 16)), d.final()]);
    } catch {
      return null;
    }
  };
  const tls = ca.issue(['kms.eu-west-1.amazonaws.com', '127.0.0.1']);
  const fake: FakeAwsKms = {
    url: '',
    arn,
    accessKeyId,
    secretAccessKey,
    calls: [],
    disabled: false,
    plaintextOf(b) {
      const out = open(Buffer.from(b, 'base64'), JSON.stringify({ purpose: 'keyswap-store-kek/v1' }));
      if (out === null) throw new Error('not a blob of this key');
      return out;
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const send = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(payload));
      };
      const fail = (type: string, message: string): void => send(400, { __type: type, message });
      const target = String(req.headers['x-amz-target'] ?? '');
      fake.calls.push(target);
      const problem = sigv4Problem({ method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body }, secretAccessKey, accessKeyId);
      if (problem !== null) return fail(problem.startsWith('signed with') ? 'UnrecognizedClientException' : 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
      const input = JSON.parse(body.toString() || '{}') as { KeyId?: string; Plaintext?: string; CiphertextBlob?: string; EncryptionContext?: Record<string, string> };
      if (input.KeyId !== undefined && input.KeyId !== arn) return fail('NotFoundException', `Key '${input.KeyId}' does not exist`);
      if (fake.disabled) return fail('DisabledException', `${arn} is disabled.`);
      const context = JSON.stringify(input.EncryptionContext ?? {});
      if (target === 'TrentService.Encrypt') {
        const plain = Buffer.from(input.Plaintext ?? '', 'base64');
        return send(200, { KeyId: arn, CiphertextBlob: seal(plain, context).toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
      }
      if (target === 'TrentService.Decrypt') {
        const plain = open(Buffer.from(input.CiphertextBlob ?? '', 'base64'), context);
        if (plain === null) return fail('InvalidCiphertextException', '');
        return send(200, { KeyId: arn, Plaintext: plain.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
      }
      return fail('UnknownOperationException', '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (fake as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

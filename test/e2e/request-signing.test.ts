import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { cliCollect, REPO } from '../helpers/cli.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { sigv4Problem } from '../helpers/sigv4-verifier.js';

// Issue #14: request signers. The agent signs with placeholder keys (curl --aws-sigv4, the AWS SDK for
// JavaScript v3); keyswap re-signs with the real key, and an independent SigV4 verifier (written from AWS's
// specification, not the signer keyswap uses) checks what the upstream received.
const AKID_PH = 'AKIAPLACEHOLDER0123456789AB';
const BEDROCK_PH = 'AKIABEDROCKPLACEHOLDER012345';
const HMAC_PH = 'hmac-PLACEHOLDER-0123456789abcdef';
const ANY_PH = 'AKIAANYSERVICEPLACEHOLDER0123';
const REAL = { AWS_ACCESS_KEY_ID: 'AKIAREALKEY0000000001', AWS_SECRET_ACCESS_KEY: `real-secret/${randomBytes(12).toString('base64')}`, WEBHOOK_KEY: `whk-${randomBytes(16).toString('hex')}` };
const NO_DNS = `--require=${JSON.stringify(path.join(REPO, 'test/helpers/no-dns.cjs'))}`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: REAL,
    secrets: `
  AWS_S3:
    placeholder: "${AKID_PH}"
    inject: { type: sigv4, region: us-east-1, service: s3, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: api.example.test, methods: [GET, PUT, HEAD] }]
  AWS_BEDROCK:
    placeholder: "${BEDROCK_PH}"
    inject: { type: sigv4, region: us-west-2, service: bedrock, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: other.example.test, methods: [POST] }]
  AWS_ANY:
    placeholder: "${ANY_PH}"
    inject: { type: sigv4, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: unbound.example.test, methods: [POST] }]
  WEBHOOK_HMAC:
    placeholder: "${HMAC_PH}"
    inject:
      type: hmac
      secret_key_secret: WEBHOOK_KEY
      signing_string: "{method}\\n{path}\\n{body_sha256}\\n{timestamp}"
      header: X-Signature
      algorithm: sha256
      encoding: hex
      timestamp_header: X-Timestamp
    bindings: [{ host: api.example.test, methods: [POST], paths: ["/v1/hooks/**"] }]
`,
  });
});
afterAll(async () => {
  await h.close();
});

const last = () => {
  const r = h.upstream.requests.at(-1);
  if (r === undefined) throw new Error('nothing reached the upstream');
  return r;
};

describe('sigv4', () => {
  it('curl --aws-sigv4 for S3 with placeholder keys: the upstream gets a request signed with the real key', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/upload?x-id=PutObject&acl=private', {
      method: 'PUT', data: 'object body', headers: ['x-amz-meta-note: kept and signed'],
      extra: ['--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${AKID_PH}:placeholder-secret`],
    });
    expect(r.status, r.stderr + r.body).toBe(200);
    const seen = last();
    expect(sigv4Problem(seen, REAL.AWS_SECRET_ACCESS_KEY, REAL.AWS_ACCESS_KEY_ID)).toBeNull();
    expect(String(seen.headers.authorization)).toContain('x-amz-meta-note');
  });

  it('a service without x-amz-content-sha256 (Bedrock): keyswap hashes the body it read, and signs over it', async () => {
    const body = JSON.stringify({ prompt: 'hi', pad: 'x'.repeat(70_000) });
    const r = await curlVia(h, 'https://other.example.test/v1/upload', {
      method: 'POST', data: body, headers: ['content-type: application/json'],
      extra: ['--aws-sigv4', 'aws:amz:us-west-2:bedrock', '--user', `${BEDROCK_PH}:placeholder-secret`],
    });
    expect(r.status, r.stderr + r.body).toBe(200);
    const seen = last();
    expect(seen.body.toString()).toBe(body);
    expect(sigv4Problem(seen, REAL.AWS_SECRET_ACCESS_KEY, REAL.AWS_ACCESS_KEY_ID)).toBeNull();
  });

  it('the AWS SDK for JavaScript v3 under keyswap run: PutObject and GetObject signed with the real key', async () => {
    const script = `
      import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
      const s3 = new S3Client({ region: 'us-east-1', endpoint: 'https://api.example.test', forcePathStyle: true,
        credentials: { accessKeyId: process.env.AWS_S3, secretAccessKey: 'placeholder-secret' }, maxAttempts: 1 });
      await s3.send(new PutObjectCommand({ Bucket: 'v1', Key: 'upload', Body: 'from the sdk' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'v1', Key: 'upload' }));
      console.log('ok', got.$metadata.httpStatusCode, (await got.Body.transformToString()).length > 0);
      s3.destroy();`;
    const before = h.upstream.requests.length;
    const run = await cliCollect(['run', '--config', path.join(h.dir, 'keyswap.yaml'), '--', process.execPath, '--input-type=module', '-e', script], {
      cwd: REPO, env: { HOME: h.dir, NODE_OPTIONS: NO_DNS, AWS_EC2_METADATA_DISABLED: 'true' }, timeoutMs: 15_000,
    });
    const r = { code: run.code, out: run.stdout + run.stderr };
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('ok 200 true');
    const calls = h.upstream.requests.slice(before);
    expect(calls.map((c) => c.method)).toEqual(['PUT', 'GET']);
    for (const c of calls) expect(sigv4Problem(c, REAL.AWS_SECRET_ACCESS_KEY, REAL.AWS_ACCESS_KEY_ID)).toBeNull();
  });

  it('with no region or service configured, the scope the client signed for is used: one binding, any AWS service', async () => {
    const r = await curlVia(h, 'https://unbound.example.test/v1/upload', {
      method: 'POST', data: 'Action=SendMessage', extra: ['--aws-sigv4', 'aws:amz:eu-west-1:sqs', '--user', `${ANY_PH}:placeholder-secret`],
    });
    expect(r.status, r.stderr + r.body).toBe(200);
    const seen = last();
    expect(String(seen.headers.authorization)).toContain(`Credential=${REAL.AWS_ACCESS_KEY_ID}/`);
    expect(String(seen.headers.authorization)).toContain('/eu-west-1/sqs/aws4_request');
    expect(sigv4Problem(seen, REAL.AWS_SECRET_ACCESS_KEY, REAL.AWS_ACCESS_KEY_ID)).toBeNull();
    // Without a scope to read (not a SigV4 header at all), there is nothing to sign for: 400, nothing sent.
    const before = h.upstream.requests.length;
    const bare = await curlVia(h, 'https://unbound.example.test/v1/upload', { method: 'POST', data: 'x', headers: [`Authorization: Bearer ${ANY_PH}`] });
    expect(bare.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('a 1 GiB S3 upload signed UNSIGNED-PAYLOAD streams through, re-signed, without being held (peak RSS growth < 64 MB)', async () => {
    const pid = h.child.pid as number;
    const status = (): string => readFileSync(`/proc/${pid}/status`, 'utf8');
    const baselineKb = Number(/VmRSS:\s+(\d+)/.exec(status())?.[1]);
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      // curl signs with the placeholder key over the declared UNSIGNED-PAYLOAD and streams stdin, chunked.
      const child = spawn('sh', ['-c', `head -c 1073741824 /dev/zero | curl -sS --max-time 120 --proxy ${h.proxyUrl} --cacert ${h.caPath} -T - -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 aws:amz:us-east-1:s3 --user '${AKID_PH}:placeholder-secret' https://api.example.test/v1/upload`], { env: { PATH: process.env.PATH ?? '' } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code, r.out).toBe(0);
    const seen = last();
    expect(seen.bodyBytes).toBe(1024 * 1024 * 1024);
    expect(sigv4Problem({ ...seen, body: Buffer.alloc(0) }, REAL.AWS_SECRET_ACCESS_KEY, REAL.AWS_ACCESS_KEY_ID)).toBeNull();
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(status())?.[1]);
    expect((peakKb - baselineKb) / 1024).toBeLessThan(64);
  }, 120_000);

  it('a streaming-signed upload (chunk signatures chained to the client’s) is refused, nothing sent', async () => {
    const before = h.upstream.requests.length;
    const r = await curlVia(h, 'https://api.example.test/v1/upload', {
      method: 'PUT', data: 'x', headers: ['x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
      extra: ['--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${AKID_PH}:placeholder-secret`],
    });
    expect(r.status).toBe(400);
    expect(r.body).toContain('cannot be re-signed');
    expect(h.upstream.requests.length).toBe(before);
  });

  it('an unsigned request carrying the placeholder elsewhere is not signed, and keeps it', async () => {
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`x-note: ${AKID_PH}`] });
    expect(last().headers['x-note']).toBe(AKID_PH);
    expect(last().headers.authorization).toBeUndefined();
  });
});

describe('hmac', () => {
  it('signs method, path, the body’s SHA-256 and a timestamp with the real key; the placeholder header is replaced', async () => {
    const body = '{"event":"ping"}';
    const r = await curlVia(h, 'https://api.example.test/v1/hooks/upload', { method: 'POST', data: body, headers: [`X-Signature: ${HMAC_PH}`, 'content-type: application/json'] });
    expect(r.status, r.body).toBe(200);
    const seen = last();
    const ts = String(seen.headers['x-timestamp']);
    expect(ts).toMatch(/^\d{10}$/);
    const sha = (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
    const expected = createHmac('sha256', REAL.WEBHOOK_KEY).update(`POST\n/v1/hooks/upload\n${sha}\n${ts}`).digest('hex');
    expect(seen.headers['x-signature']).toBe(expected);
    expect(seen.body.toString()).toBe(body);
  });
});

describe('what never leaves keyswap', () => {
  it('no real key in any response, log or audit line', () => {
    const text = h.auditText() + h.stdout() + h.stderr();
    for (const v of Object.values(REAL)) expect(text.includes(v)).toBe(false);
  });
});

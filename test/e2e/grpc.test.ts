import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCanary, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// gRPC works as a consequence of HTTP/2 through the MITM: a grpc-js client through https_proxy, with an
// `authorization` metadata placeholder, reaches a grpc-js server on a bound host with the real secret.
const PH = 'grpc-PLACEHOLDER-0123456789abcdefghij';
const SECRET = `grpc-real-${randomBytes(8).toString('hex')}`; // a different length from its placeholder

const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const SERVICE = {
  Echo: { path: '/keyswap.test.Echo/Echo', requestStream: false, responseStream: false, ...raw },
  Watch: { path: '/keyswap.test.Echo/Watch', requestStream: false, responseStream: true, ...raw },
} as unknown as grpc.ServiceDefinition;

let h: Harness;
let server: grpc.Server;
const seenAuth: string[] = [];
let client: grpc.Client & { Echo: (...args: unknown[]) => unknown; Watch: (...args: unknown[]) => unknown };
const savedProxy = process.env.grpc_proxy;

beforeAll(async () => {
  const testCa = createTestCa();
  const cert = testCa.issue(['grpc.example.test']);
  server = new grpc.Server();
  server.addService(SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const auth = String(call.metadata.get('authorization')[0] ?? '');
      seenAuth.push(auth);
      const ask = call.request.toString();
      cb(null, Buffer.from(ask === 'echo-auth' ? `you sent ${auth}` : `hello ${ask}`));
    },
    Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const auth = String(call.metadata.get('authorization')[0] ?? '');
      seenAuth.push(auth);
      const leakAt = call.request.toString() === 'leak-at-3' ? 3 : -1;
      for (let i = 0; i < 6; i++) call.write(Buffer.from(i === leakAt ? `tick ${i} ${auth}` : `tick ${i}`));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }]), (err, p) => (err ? reject(err) : resolve(p))),
  );
  h = await startHarness({
    testCa,
    resolve: { 'grpc.example.test:443': `127.0.0.1:${port}` },
    secretValues: { GRPC_KEY: SECRET },
    secrets: `
  GRPC_KEY:
    placeholder: "${PH}"
    inject: { header: authorization, format: "Bearer {GRPC_KEY}" }
    bindings: [{ host: grpc.example.test, methods: [POST], paths: ["/keyswap.test.Echo/*"] }]
`,
  });
  // grpc-js reads the proxy from the environment, as in an agent run under keyswap: it sends CONNECT with the
  // target's name and resolves only the proxy's address, so no name lookup leaves this process.
  process.env.grpc_proxy = h.proxyUrl;
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Echo');
  client = new Client('grpc.example.test:443', grpc.credentials.createSsl(Buffer.from(h.caPem))) as unknown as typeof client;
});
afterAll(async () => {
  client?.close();
  if (savedProxy === undefined) delete process.env.grpc_proxy;
  else process.env.grpc_proxy = savedProxy;
  await h?.close();
  server?.forceShutdown();
});

const md = (): grpc.Metadata => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${PH}`);
  return m;
};

function unary(ask: string): Promise<{ err: grpc.ServiceError | null; reply: string | null }> {
  return new Promise((resolve) => {
    client.Echo(Buffer.from(ask), md(), (err: grpc.ServiceError | null, reply?: Buffer) => resolve({ err, reply: reply?.toString() ?? null }));
  });
}

function watch(ask: string): Promise<{ ticks: string[]; status: grpc.StatusObject | null; err: grpc.ServiceError | null }> {
  return new Promise((resolve) => {
    const ticks: string[] = [];
    let status: grpc.StatusObject | null = null;
    const call = client.Watch(Buffer.from(ask), md()) as grpc.ClientReadableStream<Buffer>;
    call.on('data', (b: Buffer) => ticks.push(b.toString()));
    call.on('status', (s: grpc.StatusObject) => { status = s; });
    call.on('error', (err: grpc.ServiceError) => resolve({ ticks, status, err }));
    call.on('end', () => resolve({ ticks, status, err: null }));
  });
}

describe('gRPC through keyswap (grpc-js client and server)', () => {
  it('a unary call: the server gets the real secret in its authorization metadata', async () => {
    const r = await unary('world');
    expect(r.err).toBeNull();
    expect(r.reply).toBe('hello world');
    expect(seenAuth.at(-1)).toBe(`Bearer ${SECRET}`);
  });

  it('a server-streaming call arrives whole, message by message, with grpc-status OK from the trailers', async () => {
    const r = await watch('six');
    expect(r.err).toBeNull();
    expect(r.ticks).toEqual(['tick 0', 'tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5']);
    expect(r.status?.code).toBe(grpc.status.OK);
    expect(seenAuth.at(-1)).toBe(`Bearer ${SECRET}`);
  });

  it('an echo of the secret cannot be redacted inside length-prefixed messages: the call fails, the secret never arrives', async () => {
    const r = await unary('echo-auth');
    expect(r.err).not.toBeNull();
    expect(r.reply).toBeNull();
    expect(JSON.stringify(r.err)).not.toContain(SECRET);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'response_scrubbed' && e.secret_name === 'GRPC_KEY' && e.action === 'blocked'))).toBe(true);
  });

  it('in a stream, the messages before the echo arrive; the stream then fails', async () => {
    const r = await watch('leak-at-3');
    expect(r.err).not.toBeNull();
    expect(r.ticks.join('|')).not.toContain(SECRET);
    expect(r.ticks.length).toBeLessThanOrEqual(3);
  });

  it('the connection keeps working after a failed call, and no secret is in any log', async () => {
    expect((await unary('again')).reply).toBe('hello again');
    expect(findCanary(h, [])).toEqual([]);
    for (const text of [h.stdout(), h.stderr(), h.auditText()]) expect(text).not.toContain(SECRET);
  });
});

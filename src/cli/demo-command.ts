import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../log.js';
import { createLeafKey, openCa } from '../tls/index.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { mintPlaceholder } from './placeholder.js';
import { start } from './runtime.js';

const HOST = 'api.demo.test';

/**
 * `keyswap demo`: the whole idea in one run, on loopback only. A stand-in API with its own CA, a demo secret,
 * keyswap in this process, and two requests from an "agent": one the binding allows, one it does not.
 */
export async function demoCommand(_args: string[], io: CliIo): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'keyswap-demo-'));
  const secret = `demo-secret-${Math.random().toString(36).slice(2, 12)}`;
  const placeholder = mintPlaceholder('sk-');
  const say = (s = ''): boolean => io.stdout.write(`${s}\n`);

  // The stand-in API: it answers with what it received, as some real APIs do in their errors.
  const upstreamCa = await openCa(path.join(dir, 'upstream-ca'), { create: true, scope: { kind: 'hosts', hosts: [HOST] } });
  const leafKey = createLeafKey();
  const received: string[] = [];
  const api = https.createServer({ cert: upstreamCa.mintLeaf(HOST, leafKey).certPem, key: leafKey.privateKeyPem }, (req, res) => {
    received.push(`${req.method} ${req.url}  Authorization: ${req.headers.authorization ?? '(none)'}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ you_sent: req.headers.authorization ?? null }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const port = (api.address() as AddressInfo).port;

  await writeFile(path.join(dir, 'keyswap.yaml'), `version: 1
listen: 127.0.0.1:0
state_dir: ./state
audit: { path: ./audit.jsonl }
backend: { type: env }
upstream: { extra_ca_file: ./upstream-ca/ca.pem, resolve: { "${HOST}:443": "127.0.0.1:${port}" } }
secrets:
  DEMO_KEY:
    placeholder: "${placeholder}"
    inject: { header: Authorization, format: "Bearer {DEMO_KEY}" }
    bindings:
      - { host: ${HOST}, methods: [GET], paths: ["/v1/**"] }
`);
  const config = await loadConfig(path.join(dir, 'keyswap.yaml'));
  const proxy = await start(config, { ...io, env: { KEYSWAP_SECRET_DEMO_KEY: secret } }, createLogger('error'), {
    metricsAt: null, allowNonLoopback: false, writePid: false, announce: () => {}, listen: { host: '127.0.0.1', port: 0 },
  });
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, requestTls: { ca: await readFile(proxy.caPath, 'utf8') } });
  const auditLines = async (): Promise<string[]> => (await readFile(config.audit.path, 'utf8')).trim().split('\n');
  try {
    say('keyswap demo: an agent that holds only a placeholder, and an API that receives the real key.\n');
    say(`binding (keyswap.yaml): DEMO_KEY → host ${HOST}, methods [GET], paths ["/v1/**"], header Authorization`);
    say(`the agent's environment: DEMO_KEY=${placeholder}`);
    say(`keyswap's secret store:  DEMO_KEY=${secret}   (a demo value; real ones never leave the store but for the API)\n`);

    for (const [n, method, url] of [[1, 'GET', `https://${HOST}/v1/whoami`], [2, 'DELETE', `https://${HOST}/v1/everything`]] as const) {
      const before = (await auditLines()).length;
      const res = await request(url, { method, dispatcher: agent, headers: { authorization: `Bearer ${placeholder}` } });
      const body = await res.body.text();
      say(`${n}. the agent sent:        ${method} ${url}  Authorization: Bearer ${placeholder}`);
      say(`   the API received:      ${received.at(-1) ?? '(nothing)'}`);
      say(`   the agent got back:    ${res.statusCode} ${body}`);
      const decision = (await auditLines()).slice(before).find((l) => l.includes('"inject_decision"'));
      say(`   the audit log (fsynced before the API saw a byte):\n   ${decision ?? '(none)'}\n`);
    }
    say('1: the binding allows GET /v1/**, so keyswap swapped in the real key, and scrubbed its echo from the answer.');
    say('2: DELETE is outside the binding: the placeholder went through unchanged, and the decision is on record.');
    say('\nnext: keyswap init --from-env .env   (moves your own keys in), then: keyswap run --env-file .env -- <your agent>');
    return EXIT.ok;
  } finally {
    await agent.close();
    await proxy.stop('demo finished');
    api.closeAllConnections();
    await new Promise<void>((resolve) => api.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}

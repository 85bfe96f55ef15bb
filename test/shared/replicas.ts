import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { cli, startCli, type CliProcess } from '../helpers/cli.js';
import type { Harness } from '../helpers/harness.js';

/** One keyswap of several sharing state: its proxy URL, the CA its agents trust, its own audit log. */
export interface Replica {
  readonly proxyUrl: string;
  readonly caPem: string;
  readonly auditPath: string;
  readonly config: string;
  readonly process: CliProcess | null;
  auditRecords(): Record<string, unknown>[];
}

export function replicaOf(h: Harness): Replica {
  return { proxyUrl: h.proxyUrl, caPem: h.caPem, auditPath: h.auditPath, config: path.join(h.dir, 'keyswap.yaml'), process: null, auditRecords: h.auditRecords };
}

/**
 * Another keyswap on the harness's config with its own state directory and audit log (its own CA, as replicas
 * behind a Service each have theirs unless given one): `n` names them apart. `secrets` are set in its file store
 * when the config's backend is the file store.
 */
export async function startReplica(h: Harness, n: number, env: Readonly<Record<string, string>> = {}, secrets: Readonly<Record<string, string>> = {}, audit = ''): Promise<Replica> {
  const text = readFileSync(path.join(h.dir, 'keyswap.yaml'), 'utf8')
    .replace(`state_dir: ${h.dir}/state`, `state_dir: ${h.dir}/state-${n}`)
    .replace(`audit: { path: ${h.auditPath} }`, `audit: { path: ${h.dir}/audit-${n}.jsonl${audit} }`);
  const config = path.join(h.dir, `keyswap-${n}.yaml`);
  writeFileSync(config, text);
  for (const [name, value] of Object.entries(secrets)) {
    const r = cli(['secret', 'set', name, '--config', config], { input: value, env: { HOME: h.dir } });
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const p = startCli(['serve', '--config', config], { cwd: h.dir, env: { HOME: h.dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary, ...env } });
  const port = await p.listeningPort();
  const auditPath = path.join(h.dir, `audit-${n}.jsonl`);
  return {
    proxyUrl: `http://127.0.0.1:${port}`,
    caPem: readFileSync(path.join(h.dir, `state-${n}`, 'ca.pem'), 'utf8'),
    auditPath,
    config,
    process: p,
    auditRecords: () => readFileSync(auditPath, 'utf8').split('\n').filter((l) => l.startsWith('{')).flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } }),
  };
}

/** Stops a replica (the harness's own with h.stop()) and starts it again on the same config and state. */
export async function restartReplica(h: Harness, r: Replica): Promise<Replica> {
  if (r.process === null) await h.stop();
  else await r.process.stop();
  const p = startCli(['serve', '--config', r.config], { cwd: h.dir, env: { HOME: h.dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary } });
  const port = await p.listeningPort();
  return { ...r, proxyUrl: `http://127.0.0.1:${port}`, process: p };
}

/** `count` requests at once, round-robin over the replicas (one undici ProxyAgent each); their statuses and bodies. */
export async function fire(replicas: readonly Replica[], count: number, url: string, headers: Record<string, string>): Promise<{ status: number; body: string }[]> {
  const agents = replicas.map((r) => new ProxyAgent({ uri: r.proxyUrl, requestTls: { ca: r.caPem }, connections: 16 }));
  try {
    return await Promise.all(Array.from({ length: count }, async (_, i) => {
      const res = await request(url, { dispatcher: agents[i % agents.length], headers });
      return { status: res.statusCode, body: await res.body.text() };
    }));
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
}

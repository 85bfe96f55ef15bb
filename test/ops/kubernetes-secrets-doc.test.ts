import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { namesToFetch, parseConfig } from '../../src/config/index.js';
import { FilesBackend } from '../../src/secrets/index.js';
import { REPO } from '../helpers/cli.js';
import { kubeletWrite } from '../helpers/kubelet-writer.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 7: docs/kubernetes-secrets.md's recipes (ExternalSecret → a mounted Secret → the files backend)
 * checked as far as keyswap goes: every YAML block parses; keyswap's config loads; the pod mounts the Secret each
 * ExternalSecret writes, read-only and 0400, at the directory the config reads; the ExternalSecrets write exactly the
 * names the config fetches; and a Secret laid out as the kubelet lays it out is read for each of those names.
 */

type Doc = Record<string, unknown> & { kind?: string; apiVersion?: string; metadata?: { name?: string }; spec?: Record<string, unknown> };

const text = readFileSync(path.join(REPO, 'docs/kubernetes-secrets.md'), 'utf8');
const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const docs: Doc[] = blocks.flatMap((b) => parseAllDocuments(b).map((d) => {
  expect(d.errors, b).toEqual([]);
  return d.toJSON() as Doc;
}));

describe('docs/kubernetes-secrets.md', () => {
  const configBlock = blocks.find((b) => b.startsWith('version: 1')) as string;
  const config = parseConfig(configBlock, '/etc/keyswap/keyswap.yaml');
  const fetched = [...new Set(config.secrets.flatMap((s) => namesToFetch(s)))].sort();

  it('keyswap\'s config loads, reading a files directory', () => {
    expect(config.backend).toEqual({ type: 'files', directory: '/var/run/keyswap-secrets' });
    expect(fetched).toEqual(['GITHUB_TOKEN', 'OPENAI_API_KEY']);
  });

  it('the pod mounts the Secret read-only, 0400, at that directory, in keyswap\'s container only; the agent holds placeholders', () => {
    const pod = docs.find((d) => d.kind === 'Pod') as Doc;
    const spec = pod.spec as { containers: { name: string; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[]; env?: { name: string; value: string }[] }[]; volumes: { name: string; secret?: { secretName: string; defaultMode: number } }[] };
    const volume = spec.volumes.find((v) => v.secret !== undefined);
    expect(volume?.secret?.defaultMode).toBe(0o400);
    const keyswap = spec.containers.find((c) => c.name === 'keyswap');
    expect(keyswap?.volumeMounts?.find((m) => m.name === volume?.name)).toEqual({ name: volume?.name, mountPath: '/var/run/keyswap-secrets', readOnly: true });
    const agent = spec.containers.find((c) => c.name === 'agent');
    expect(agent?.volumeMounts ?? []).toEqual([]);
    for (const s of config.secrets) expect(agent?.env?.find((e) => e.name === s.name)?.value).toBe(s.placeholder);
  });

  it('each ExternalSecret (Vault, AWS, Azure, Conjur) writes that Secret with exactly the names keyswap fetches, from a store defined beside it', () => {
    const externals = docs.filter((d) => d.kind === 'ExternalSecret');
    const stores = new Map(docs.filter((d) => d.kind === 'SecretStore').map((d) => [d.metadata?.name, Object.keys((d.spec as { provider: object }).provider)[0]]));
    expect([...stores.values()].sort()).toEqual(['aws', 'azurekv', 'conjur', 'vault']);
    expect(externals).toHaveLength(4);
    const pod = docs.find((d) => d.kind === 'Pod') as Doc;
    const secretName = (pod.spec as { volumes: { secret?: { secretName: string } }[] }).volumes.find((v) => v.secret)?.secret?.secretName;
    for (const e of [...externals, ...docs.filter((d) => d.kind === 'SecretStore')]) expect(e.apiVersion).toBe('external-secrets.io/v1');
    for (const e of externals) {
      const spec = e.spec as { secretStoreRef: { name: string }; target: { name: string }; data: { secretKey: string; remoteRef: { key: string } }[] };
      expect(stores.has(spec.secretStoreRef.name)).toBe(true);
      expect(spec.target.name).toBe(secretName);
      expect(spec.data.map((d) => d.secretKey).sort()).toEqual(fetched);
      for (const d of spec.data) expect(d.remoteRef.key).not.toBe('');
    }
  });

  it('the Secret as the kubelet writes it (0400, ..data swap) is read by the files backend for every name, before and after a sync', async () => {
    const w = tempWorld('k8s-doc');
    kubeletWrite(w.dir, 1, Object.fromEntries(fetched.map((n) => [n, `${n}-first\n`])));
    const backend = await FilesBackend.open(w.dir);
    const ctx = { signal: AbortSignal.timeout(5000) };
    for (const n of fetched) expect((await backend.fetch(n, ctx)).reveal()).toBe(`${n}-first`);
    kubeletWrite(w.dir, 2, Object.fromEntries(fetched.map((n) => [n, `${n}-rotated\n`])));
    for (const n of fetched) expect((await backend.fetch(n, ctx)).reveal()).toBe(`${n}-rotated`);
  });
});

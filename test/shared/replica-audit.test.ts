import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { fire, replicaOf, startReplica, type Replica } from './replicas.js';

/*
 * Issue #29, item 4: one audit story across replicas. Three keyswaps share one audit key and each writes its own
 * chain, every record naming it (chain_id: the replica's name and a nonce of its start); `keyswap audit verify`
 * takes all their files and checks each chain on its own, naming the one that was tampered with; `audit.format:
 * ocsf` writes an OCSF copy beside each chain, which `keyswap audit ocsf` rebuilds from the chain.
 */
describe('audit across replicas', () => {
  let h: Harness;
  let replicas: Replica[];
  beforeAll(async () => {
    h = await startHarness({ env: { KEYSWAP_CHAIN_NAME: 'gateway-0' } });
    const shared = `, key_file: ${h.dir}/state/audit.key, format: ocsf`;
    replicas = [replicaOf(h), await startReplica(h, 1, { KEYSWAP_CHAIN_NAME: 'gateway-1' }, {}, shared), await startReplica(h, 2, { KEYSWAP_CHAIN_NAME: 'gateway-2' }, {}, shared)];
    const answers = await fire(replicas, 30, 'https://api.example.test/v1/a', { authorization: `Bearer ${PLACEHOLDER}` });
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await Promise.all(replicas.map((r) => r.process?.stop()));
    await h.stop();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const files = (): string[] => replicas.map((r) => r.auditPath);
  const key = (): string => path.join(h.dir, 'state/audit.key');

  it('every record names its replica\'s chain, each start with its own nonce', () => {
    for (const [i, r] of replicas.entries()) {
      const ids = new Set(r.auditRecords().map((rec) => rec.chain_id));
      expect(ids.size).toBe(1);
      expect([...ids][0]).toMatch(new RegExp(`^gateway-${i}-[0-9a-f]{8}$`));
    }
  });

  it('audit verify takes the three replicas\' files and checks each chain', async () => {
    const r = await cliCollect(['audit', 'verify', '--key', key(), ...files()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (let i = 0; i < 3; i++) expect(r.stdout).toContain(`chain gateway-${i} (1 file):`);
    expect(r.stdout.match(/^intact: \d+ records, every MAC and link holds$/gm)).toHaveLength(3);
    expect(r.stdout).toMatch(/all 3 chains intact\n$/);
  });

  it('a record edited in one replica\'s file fails that chain alone, and says which', async () => {
    const file = replicas[1]?.auditPath as string;
    const original = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, original.replace('"status":200', '"status":201'));
      const r = await cliCollect(['audit', 'verify', '--key', key(), ...files()]);
      expect(r.code).toBe(1);
      const sections = r.stdout.split(/^chain /m).slice(1);
      expect(sections.find((s) => s.startsWith('gateway-1'))).toMatch(/edited[\s\S]*NOT intact/);
      for (const name of ['gateway-0', 'gateway-2']) expect(sections.find((s) => s.startsWith(name))).toMatch(/intact: \d+ records/);
      expect(r.stdout).toMatch(/NOT every chain is intact\n$/);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('audit.format: ocsf writes an OCSF copy of every record beside the chain, and audit ocsf rebuilds it', async () => {
    for (const r of replicas.slice(1)) {
      const copy = readFileSync(r.auditPath.replace(/\.jsonl$/, '.ocsf.jsonl'), 'utf8');
      const events = copy.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
      const records = r.auditRecords();
      expect(events).toHaveLength(records.length);
      expect(events.map((e) => e.metadata.uid)).toEqual(records.map((rec) => `${String(rec.chain_id)}:${String(rec.seq)}`));
      const response = events.find((e) => e.unmapped.keyswap.type === 'upstream_response');
      expect(response).toMatchObject({ class_uid: 4002, category_uid: 4, activity_id: 3, type_uid: 400203, status_id: 1, http_request: { http_method: 'GET', url: { hostname: 'api.example.test', port: 443, path: '/v1/a' } }, http_response: { code: 200 }, metadata: { version: '1.3.0', product: { name: 'keyswap' } } });
      expect(events.find((e) => e.unmapped.keyswap.type === 'proxy_start')).toMatchObject({ class_uid: 6002, activity_id: 3 });
      expect(copy.includes(h.canary)).toBe(false);
      const rebuilt = await cliCollect(['audit', 'ocsf', r.auditPath]);
      expect(rebuilt.stdout).toBe(copy);
    }
  });
});

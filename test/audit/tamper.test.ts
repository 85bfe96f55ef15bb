import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditKey, AuditWriter, GENESIS, sha256Hex, verifyAuditFiles, type AuditEvent } from '../../src/audit/index.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_FILE } from '../helpers/audit-key.js';
import { curlVia } from '../helpers/clients.js';
import { cli } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

// Issue #18: what someone who can write the audit log (but not read the audit key) can do to it.

const event = (i: number): AuditEvent => ({ type: 'tls_passthrough', request_id: `r${i}`, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });
async function logWith(n: number): Promise<string> {
  const file = tempWorld('tamper').path('audit.jsonl');
  const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
  for (let i = 0; i < n; i++) await w.append(event(i));
  await w.close();
  return file;
}
const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);
const write = (f: string, l: readonly string[]): void => writeFileSync(f, `${l.join('\n')}\n`);
const verify = (files: string[], extra: Record<string, unknown> = {}) => verifyAuditFiles(files, { key: TEST_AUDIT_KEY, ...extra });

/** Recomputes seq and every link after lines were removed, as a forger would: with SHA-256, or a MAC under a guessed key. */
function relinked(l: readonly string[], link: (line: string) => { prev: string; mac?: string }): string[] {
  let prev = GENESIS;
  return l.map((line, i) => {
    const rec = JSON.parse(line) as Record<string, unknown>;
    delete rec.mac;
    const body = JSON.stringify({ ...rec, seq: i + 1, prev });
    const { prev: next, mac } = link(body);
    const out = mac === undefined ? body : `${body.slice(0, -1)},"mac":"${mac}"}`;
    prev = mac ?? next;
    return out;
  });
}

describe('rewriting history needs the key', () => {
  it('a record deleted, with seq and every link recomputed (SHA-256, as version 1 allowed), is not intact', async () => {
    const file = await logWith(8);
    const l = lines(file);
    l.splice(3, 1);
    write(file, relinked(l, (line) => ({ prev: sha256Hex(line) })));
    expect((await verify([file])).intact).toBe(false);
  });

  it('the same forgery with MACs under any other key is not intact', async () => {
    const file = await logWith(8);
    const l = lines(file);
    l.splice(3, 1);
    const guess = new AuditKey(Buffer.alloc(32, 1));
    write(file, relinked(l, (line) => ({ prev: '', mac: guess.mac(line) })));
    const v = await verify([file]);
    expect(v.intact).toBe(false);
    expect(v.findings[0]).toMatchObject({ kind: 'edited', line: 1 });
  });

  it('the head cut off (records 1–3 dropped) is not intact: the chain must start at seq 1', async () => {
    const file = await logWith(8);
    write(file, lines(file).slice(3));
    const v = await verify([file]);
    expect(v.intact).toBe(false);
    expect(v.findings[0]).toEqual({ kind: 'head_missing', file, line: 1, seq: 4 });
    // With the head before it (what keyswap logged when the older file was removed), it verifies.
    const before = JSON.parse(lines(await Promise.resolve(file))[0] ?? '{}') as { prev: string };
    expect((await verify([file], { from: { seq: 3, hash: before.prev } })).intact).toBe(true);
  });

  it('a junk line inserted mid-log is tampering, not “torn”', async () => {
    const file = await logWith(6);
    const l = lines(file);
    l.splice(3, 0, '{"ts":"2026-01-01T00:00:00.000Z","v":2,"seq":4,"pr');
    write(file, l);
    const v = await verify([file]);
    expect(v.intact).toBe(false);
    expect(v.findings).toContainEqual({ kind: 'not_a_record', file, line: 4 });
  });

  it('an unkeyed (version 1) record appended after keyed ones is tampering', async () => {
    const file = await logWith(4);
    const l = lines(file);
    const last = JSON.parse(l[3] ?? '{}') as { mac: string };
    l.push(JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', v: 1, seq: 5, prev: last.mac, type: 'proxy_stop', pid: 1, reason: 'forged' }));
    write(file, l);
    const v = await verify([file]);
    expect(v.intact).toBe(false);
    expect(v.findings[0]).toEqual({ kind: 'downgraded', file, line: 5 });
  });

  it('a whole log of unkeyed records, chained from genesis, is not intact: no keyed record vouches for it', async () => {
    const file = tempWorld('tamper').path('audit.jsonl');
    const forged = relinked(Array.from({ length: 3 }, (_, i) => JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', v: 1, seq: 0, prev: '', type: 'proxy_stop', pid: i, reason: 'forged' })), (line) => ({ prev: sha256Hex(line) }));
    write(file, forged);
    expect(await verify([file])).toMatchObject({ intact: false, findings: [{ kind: 'unkeyed', records: 3 }] });
  });

  it('the last line edited (nothing links to it) is caught by its own MAC', async () => {
    const file = await logWith(5);
    const l = lines(file);
    l[4] = (l[4] ?? '').replace('"r4"', '"rX"');
    write(file, l);
    expect((await verify([file])).findings[0]).toEqual({ kind: 'edited', file, line: 5 });
  });
});

describe('keyswap audit verify: the files, the key, the anchors', () => {
  it('given only the live file, verifies the files keyswap rotated beside it first, in order; a removed rotated file shows', async () => {
    const dir = tempWorld('tamper').dir;
    const file = path.join(dir, 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY, maxBytes: 4096 });
    for (let i = 0; i < 40; i++) await w.append(event(i));
    await w.close();
    const verifyCli = () => cli(['audit', 'verify', '--key', TEST_AUDIT_KEY_FILE, file]);
    const ok = verifyCli();
    expect(ok.status, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/checked \d+ rotated file\(s\) first/);
    expect(ok.stdout).toContain('intact: 40 records');
    // The oldest rotated file deleted: the chain no longer starts at seq 1.
    const { readdirSync, rmSync } = await import('node:fs');
    const oldest = readdirSync(dir).filter((f) => /^audit\.jsonl\.\d{4}-/.test(f)).sort()[0] as string;
    rmSync(path.join(dir, oldest));
    const bad = verifyCli();
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('not the start of the chain');
  });

  it('an audit key readable by others is refused, and verify without any key says how to give one', async () => {
    const file = await logWith(2);
    const loose = path.join(path.dirname(file), 'loose.key');
    writeFileSync(loose, readFileSync(TEST_AUDIT_KEY_FILE));
    chmodSync(loose, 0o644);
    const r = cli(['audit', 'verify', '--key', loose, file], { cwd: path.dirname(file) });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`chmod 600 ${loose}`);
    const none = cli(['audit', 'verify', file], { cwd: path.dirname(file) });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('needs the audit key');
  });
});

describe('the head outside the file (a real keyswap)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('keyswap logs its head; records cut from the end are caught with --head, and the key is created 0600 in state_dir', async () => {
    for (let i = 0; i < 3; i++) expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
    await h.stop();
    const heads = [...h.stderr().matchAll(/"audit_head":"(\d+:[0-9a-f]{64})"/g)].map((m) => m[1] as string);
    expect(heads.length).toBeGreaterThanOrEqual(2); // at start and at stop
    const head = heads.at(-1) as string;
    const config = path.join(h.dir, 'keyswap.yaml');
    expect(spawnSync('stat', ['-c', '%a', path.join(h.dir, 'state', 'audit.key')], { encoding: 'utf8' }).stdout.trim()).toBe('600');
    const verifyCli = (...extra: string[]) => cli(['audit', 'verify', '--config', config, ...extra, h.auditPath], { cwd: h.dir });
    const ok = verifyCli('--head', head);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`head: ${head} (ends with proxy_stop`);
    // Cut the last two records (proxy_stop among them): without the anchor the rest still verifies; with it, not.
    const l = lines(h.auditPath);
    writeFileSync(`${h.auditPath}.cut`, `${l.slice(0, -2).join('\n')}\n`, { mode: 0o600 });
    renameSync(`${h.auditPath}.cut`, h.auditPath);
    expect(verifyCli().status).toBe(0);
    const cut = verifyCli('--head', head);
    expect(cut.status).toBe(1);
    expect(cut.stdout).toMatch(/ends at seq \d+, but keyswap logged seq \d+ as written: records were cut from the end/);
    expect(h.stderr() + h.stdout()).not.toContain(h.canary);
  });
});

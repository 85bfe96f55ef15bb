import { appendFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditWriter, describeFinding, verifyAuditFiles, type AuditEvent } from '../../src/audit/index.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_FILE } from '../helpers/audit-key.js';
import { cli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

const event = (i: number): AuditEvent => ({ type: 'tls_passthrough', request_id: `r${i}`, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });
async function logWith(n: number, file = tempWorld('chain').path('audit.jsonl')): Promise<string> {
  const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
  await Promise.all(Array.from({ length: n }, (_, i) => w.append(event(i))));
  await w.close();
  return file;
}
const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);

describe('the hash-chained audit log (K6)', () => {
  it('an untouched log verifies, and a restart continues the chain (seq and prev) from the file tail', async () => {
    const file = await logWith(20);
    await logWith(5, file);
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v).toMatchObject({ intact: true, records: 25, findings: [] });
    expect(JSON.parse(lines(file)[24] ?? '{}').seq).toBe(25);
  });

  it('an edited line is named as edited', async () => {
    const file = await logWith(10);
    const l = lines(file);
    l[3] = (l[3] ?? '').replace('"r3"', '"rX"');
    writeFileSync(file, `${l.join('\n')}\n`);
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v.intact).toBe(false);
    expect(v.findings[0]).toEqual({ kind: 'edited', file, line: 4 });
  });

  it('a removed line is named as removed, with how many are missing', async () => {
    const file = await logWith(10);
    const l = lines(file);
    l.splice(5, 2);
    writeFileSync(file, `${l.join('\n')}\n`);
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v.findings[0]).toEqual({ kind: 'removed', file, line: 6, missing: 2 });
  });

  it('a torn last line (kill -9 mid-write) is reported as torn, not as tampering; the next start closes it and continues', async () => {
    const file = await logWith(5);
    appendFileSync(file, '{"ts":"2026-01-01T00:00:00.000Z","v":2,"seq":6,"pr');
    expect(await verifyAuditFiles([file], { key: TEST_AUDIT_KEY })).toMatchObject({ intact: true, findings: [{ kind: 'torn', line: 6 }] });
    await logWith(3, file);
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    // The restart closed the fragment and wrote an audit_torn_line record vouching for it: 5 + 1 + 3 records.
    expect(v).toMatchObject({ intact: true, records: 9, findings: [{ kind: 'torn', line: 6 }] });
  });

  it('rotation starts a file linked to the last hash of the previous one; truncating the old file is detected', async () => {
    const file = await logWith(0);
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 5; i++) await w.append(event(i));
    const rotated = `${file}.1`;
    renameSync(file, rotated);
    await w.reopen();
    for (let i = 5; i < 8; i++) await w.append(event(i));
    await w.close();
    expect(await verifyAuditFiles([rotated, file], { key: TEST_AUDIT_KEY })).toMatchObject({ intact: true, records: 8 });
    const old = lines(rotated);
    writeFileSync(rotated, `${old.slice(0, 3).join('\n')}\n`);
    const v = await verifyAuditFiles([rotated, file], { key: TEST_AUDIT_KEY });
    expect(v.intact).toBe(false);
    expect(describeFinding(v.findings[0] as never)).toBe(`${rotated}: truncated after line 3 (the next file links to records this one no longer has)`);
  });

  it('keyswap audit verify exits 0 on an intact log and 1 naming the first bad line otherwise', async () => {
    const file = await logWith(6);
    const ok = cli(['audit', 'verify', '--key', TEST_AUDIT_KEY_FILE, file]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('intact: 6 records');
    const l = lines(file);
    l[1] = (l[1] ?? '').replace('tls_passthrough', 'tls_passthrouGH');
    writeFileSync(file, `${l.join('\n')}\n`);
    const bad = cli(['audit', 'verify', '--key', TEST_AUDIT_KEY_FILE, file]);
    expect(bad.status).toBe(1);
    expect(bad.stdout.split('\n')[0]).toBe(`${file}:2: edited (its MAC or the next record's link does not match this line: changed, or written without the audit key)`);
  });
});

describe('records the writer adds, in `keyswap audit verify`', () => {
  it('exits 1 naming a live log that was deleted under the writer, and 0 for one moved away and followed', async () => {
    const deleted = await logWith(2);
    const w = await AuditWriter.open(deleted, { key: TEST_AUDIT_KEY });
    unlinkSync(deleted);
    await w.append(event(2));
    await w.close();
    const bad = cli(['audit', 'verify', '--key', TEST_AUDIT_KEY_FILE, deleted]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`${deleted}:1: the audit file was deleted or overwritten while keyswap wrote it; keyswap continued here, linked to its last record, which only a copy of the old file still holds`);
    const moved = await logWith(2);
    const m = await AuditWriter.open(moved, { key: TEST_AUDIT_KEY });
    renameSync(moved, `${moved}.1`);
    await m.append(event(2));
    await m.close();
    const ok = cli(['audit', 'verify', '--key', TEST_AUDIT_KEY_FILE, `${moved}.1`, moved]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(`${moved}:1: the audit file was moved away while keyswap wrote it`);
    expect(ok.stdout).toContain('intact: 4 records');
  });
});

describe('size rotation', () => {
  it('past max_bytes the log moves to <path>.<timestamp> and the new file links to it', async () => {
    const dir = tempWorld('rot').dir;
    const file = path.join(dir, 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY, maxBytes: 4096 });
    for (let i = 0; i < 40; i++) await w.append(event(i));
    await w.close();
    const { readdirSync } = await import('node:fs');
    const rotated = readdirSync(dir).filter((f) => /^audit\.jsonl\.\d{4}-/.test(f)).sort().map((f) => path.join(dir, f));
    expect(rotated.length).toBeGreaterThan(0);
    expect(await verifyAuditFiles([...rotated, file], { key: TEST_AUDIT_KEY })).toMatchObject({ intact: true, records: 40 });
  });
});

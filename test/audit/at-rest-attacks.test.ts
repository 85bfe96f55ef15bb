import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditWriter, describeFinding, loadAuditKey, verifyAuditFiles, type AuditEvent } from '../../src/audit/index.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { cli, startCli } from '../helpers/cli.js';
import { bearer, configYaml } from '../helpers/config-yaml.js';
import { tempWorld } from '../helpers/temp-world.js';

// Issue #18, attacked: what someone who can write the audit log (not read audit.key) still gets past `audit verify`.
// Each test here failed when it was written; each names the claim it checks.

const event = (i: number): AuditEvent => ({ type: 'tls_passthrough', request_id: `r${i}`, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });
const tmp = (): string => tempWorld('audit-attack').dir;
const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);
const write = (f: string, l: readonly string[]): void => writeFileSync(f, `${l.join('\n')}\n`, { mode: 0o600 });

/** Runs `keyswap serve` until it listens, stops it with SIGTERM, and returns every `audit_head` it logged. */
async function serveOnce(dir: string): Promise<string[]> {
  const keyswap = startCli(['serve', '--config', path.join(dir, 'keyswap.yaml')], { cwd: dir, env: { HOME: dir, KEYSWAP_SECRET_A: 'a-value-nobody-sees-0123' } });
  await keyswap.listeningPort();
  await keyswap.stop();
  return [...keyswap.stderr().matchAll(/"audit_head":"(\d+:[0-9a-f]{64})"/g)].map((m) => m[1] as string);
}

describe('the head outside the file, across a restart', () => {
  it('records cut from the end while keyswap was stopped show against the last head keyswap logged after it restarted', async () => {
    // SECURITY.md: someone who can write the log cannot "cut the tail off unnoticed by an operator who checks with
    // --head the last audit_head keyswap logged to the journal". After a restart, the last head logged is the one
    // keyswap computed from the cut file, so that check passes.
    const dir = tmp();
    const audit = path.join(dir, 'audit.jsonl');
    writeFileSync(path.join(dir, 'keyswap.yaml'), configYaml({
      version: 1,
      listen: '127.0.0.1:0',
      state_dir: `${dir}/state`,
      audit: { path: audit },
      backend: { type: 'env', config: { prefix: 'KEYSWAP_SECRET_' } },
      secrets: { A: { placeholder: 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ', inject: bearer('A'), bindings: [{ host: 'api.example.com' }] } },
    }));
    await serveOnce(dir);
    await serveOnce(dir); // records 3 and 4: what the attacker wants gone
    expect(lines(audit)).toHaveLength(4);
    // Keyswap is stopped; the attacker cuts the last two records.
    write(audit, lines(audit).slice(0, -2));
    const heads = await serveOnce(dir);
    const last = heads.at(-1) as string;
    const r = cli(['audit', 'verify', '--config', path.join(dir, 'keyswap.yaml'), '--head', last, audit], { cwd: dir });
    expect(r.status, r.stdout).toBe(1);
  }, 60_000);
});

describe('torn lines: only keyswap’s own incomplete write, once, where it was', () => {
  it('a torn line keyswap vouched for, copied to a second place in the log, is tampering', async () => {
    const file = path.join(tmp(), 'audit.jsonl');
    const w1 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 3; i++) await w1.append(event(i));
    await w1.close();
    // A write cut short (kill -9): keyswap closes the fragment at its next start and vouches for it.
    const fragment = '{"ts":"2026-01-01T00:00:00.000Z","v":2,"seq":4,"pr';
    writeFileSync(file, fragment, { flag: 'a' });
    const w2 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 3; i < 6; i++) await w2.append(event(i));
    await w2.close();
    expect((await verifyAuditFiles([file], { key: TEST_AUDIT_KEY })).intact).toBe(true);
    // The attacker pastes the same fragment between two later records: one vouch, now two lines.
    const l = lines(file);
    l.splice(l.length - 1, 0, fragment);
    write(file, l);
    expect((await verifyAuditFiles([file], { key: TEST_AUDIT_KEY })).intact).toBe(false);
  });

  it('text appended by someone else while keyswap was stopped is not vouched for as keyswap’s own torn write', async () => {
    const file = path.join(tmp(), 'audit.jsonl');
    const w1 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 3; i++) await w1.append(event(i));
    await w1.close();
    // Not a prefix of any record keyswap could have been writing (those start with its ts, v, seq and prev).
    writeFileSync(file, 'ATTACKER NOTE: request r1 was approved by the admin', { flag: 'a' });
    const w2 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    await w2.append(event(3));
    await w2.close();
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v.intact).toBe(false);
    expect(v.findings).toContainEqual({ kind: 'not_a_record', file, line: 4 });
  });
});

describe('torn-line vouching', () => {
  // Not stopped (docs/attacks.md): keyswap cannot tell such text from its own write cut short by kill -9. This pins
  // what verify does with it: the line is listed, by number, as torn, and said to prove nothing.
  it('text appended after the exact opening keyswap’s next record would have is listed as a torn line that proves nothing', async () => {
    const file = path.join(tmp(), 'audit.jsonl');
    const w1 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 3; i++) await w1.append(event(i));
    await w1.close();
    // Everything the prefix needs is in the last line; what follows it is the attacker's own words.
    const last = JSON.parse(lines(file).at(-1) as string) as { v: number; seq: number; mac: string };
    const opening = `{"ts":"2026-01-01T00:00:00.000Z","v":${last.v},"seq":${last.seq + 1},"prev":"${last.mac}",`;
    writeFileSync(file, `${opening}"ATTACKER NOTE":"request r1 was approved by the admin; ignore the alerts below"`, { flag: 'a' });
    const w2 = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    await w2.append(event(3));
    await w2.close();
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v.findings).toContainEqual({ kind: 'torn', file, line: 4 });
    expect(describeFinding({ kind: 'torn', file, line: 4 })).toContain('its text is not a record and proves nothing');
  });
});

describe('lines that are JSON but not records', () => {
  it.each(['null', '[]', '"text"', '42', 'true'])('a line `%s` mid-log is reported as not a record, naming its line', async (junk) => {
    const file = path.join(tmp(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 3; i++) await w.append(event(i));
    await w.close();
    const l = lines(file);
    l.splice(1, 0, junk);
    write(file, l);
    const v = await verifyAuditFiles([file], { key: TEST_AUDIT_KEY });
    expect(v.intact).toBe(false);
    expect(v.findings).toContainEqual({ kind: 'not_a_record', file, line: 2 });
  });
});

describe('the audit key file', () => {
  it('a dangling symlink planted at audit.key is refused with a message, not retried forever', async () => {
    const dir = tmp();
    const keyFile = path.join(dir, 'audit.key');
    symlinkSync(path.join(dir, 'nowhere'), keyFile);
    const pending = loadAuditKey(keyFile, { create: true });
    const outcome = await Promise.race([
      pending.then(() => 'loaded', (e: Error) => `refused: ${e.message}`),
      new Promise<string>((r) => setTimeout(() => r('still trying after 3 s'), 3000)),
    ]);
    if (outcome === 'still trying after 3 s') {
      rmSync(keyFile); // let the loop end so the worker can exit
      await pending.catch(() => {});
    }
    expect(outcome).toMatch(/^refused: /);
    expect(outcome).toContain(keyFile);
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AuditWriteFailed, AuditWriter, GENESIS, readAuditFile, sha256Hex, verifyAuditFiles, type AuditEvent, type Finding, type Verification } from '../../src/audit/index.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { waitFor } from '../helpers/harness.js';
import { makeTempWorld, tempWorld } from '../helpers/temp-world.js';

const dir = (): string => tempWorld('audit').dir;
const event = (i: number): AuditEvent => ({ type: 'tls_passthrough', request_id: `r${i}`, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });

describe('AuditWriter', () => {
  it('creates the log 0600', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    await w.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a log others can write to', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    writeFileSync(file, '');
    chmodSync(file, 0o666);
    await expect(AuditWriter.open(file, { key: TEST_AUDIT_KEY })).rejects.toThrow(/chmod 600/);
  });

  it('group commit: 200 concurrent appends land as 200 valid lines in far fewer fsync batches', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    await Promise.all(Array.from({ length: 200 }, (_, i) => w.append(event(i))));
    const { batches, events } = w.stats;
    await w.close();
    const { records, tornTail } = await readAuditFile(file);
    expect(tornTail).toBe(false);
    expect(records).toHaveLength(200);
    expect(records.every((r) => typeof r.ts === 'string' && r.v === 2)).toBe(true);
    expect(events).toBe(200);
    expect(batches).toBeLessThan(events);
  });

  it('an append resolves only once its line is on disk', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    const seen: boolean[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => w.append(event(i)).then(() => seen.push(readFileSync(file, 'utf8').includes(`"request_id":"r${i}"`)))),
    );
    await w.close();
    expect(seen).toEqual(Array(20).fill(true));
  });

  it('close() flushes what was queued, is idempotent, and later appends are refused', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    const pending = Array.from({ length: 10 }, (_, i) => w.append(event(i)));
    await w.close();
    await w.close();
    await Promise.all(pending);
    expect((await readAuditFile(file)).records).toHaveLength(10);
    await expect(w.append(event(99))).rejects.toBeInstanceOf(AuditWriteFailed);
  });

  it('a torn last line (kill -9 mid-write) is reported as torn, not parsed', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    writeFileSync(file, '{"type":"proxy_start"}\n{"type":"inject_dec', { mode: 0o600 });
    const r = await readAuditFile(file);
    expect(r.records).toHaveLength(1);
    expect(r.tornTail).toBe(true);
  });
});

describe('lazy appends', () => {
  it('a lazy event is written with the next durable batch, or on its own shortly after, and by close()', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    const lazy = w.appendLazy(event(1));
    await w.append(event(2));
    expect(readFileSync(file, 'utf8')).toContain('"r1"');
    await lazy;
    const alone = w.appendLazy(event(3));
    await alone; // flushed by its timer, with no durable append to carry it
    expect(readFileSync(file, 'utf8')).toContain('"r3"');
    const last = w.appendLazy(event(4));
    await w.close();
    await last;
    expect(readFileSync(file, 'utf8')).toContain('"r4"');
  });
});

describe('one writer per log', () => {
  it('a second writer on the same log is refused while the first lives, naming its pid; a dead holder’s lock is taken over', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    // The first writer is another process that holds the log open until told to stop.
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      const { AuditWriter, AuditKey } = await import(${JSON.stringify(path.resolve(__dirname, '../../dist/audit/index.js'))});
      const w = await AuditWriter.open(${JSON.stringify(file)}, { key: new AuditKey(Buffer.alloc(32, 0x5a)) });
      process.stdout.write('open\\n');
      process.stdin.once('data', async () => { await w.close(); process.exit(0); });`], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    await expect(AuditWriter.open(file, { key: TEST_AUDIT_KEY })).rejects.toThrow(`is being written by another keyswap (process ${holder.pid}); stop it, or give this one its own audit.path`);
    holder.stdin.write('stop\n');
    await new Promise((resolve) => holder.once('exit', resolve));
    // A lock left by a process that no longer exists (kill -9) does not block the next start.
    writeFileSync(path.join(`${file}.lock.d`, '000000000099'), 'held 2147483646 -\n');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    await w.append(event(1));
    await w.close();
    expect(existsSync(`${file}.lock.d/000000000100`)).toBe(true);
  });
});

const summary = ({ intact, records, findings }: Verification) => ({ intact, records, findings });
const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);
const parsed = (f: string): Array<Record<string, unknown>> => lines(f).map((l) => JSON.parse(l) as Record<string, unknown>);
/** Fast retries, so a test waits tens of milliseconds for a recovery rather than the production second. */
const FAST_RETRY = { retry: { firstMs: 20, maxMs: 200 } } as const;

/** A writer with three records written, a copy of its file, and the last of those lines. */
async function writerWithThreeRecords(): Promise<{ file: string; w: AuditWriter; copy: string; lastOld: string }> {
  const file = path.join(dir(), 'audit.jsonl');
  const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
  onTestFinished(() => w.close());
  for (let i = 0; i < 3; i++) await w.append(event(i));
  const copy = `${file}.copy`;
  copyFileSync(file, copy);
  return { file, w, copy, lastOld: lines(file)[2] ?? '' };
}

describe('the file at the path is still the one being written (K6)', () => {
  it('a deleted audit file is recreated 0600, its first record links to the last record written and says it was deleted; verify reports the deletion', async () => {
    const { file, w, copy, lastOld } = await writerWithThreeRecords();
    unlinkSync(file);
    await w.append(event(3));
    await w.append(event(4));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const recs = parsed(file);
    expect(recs[0]).toMatchObject({ type: 'audit_file_replaced', reason: 'deleted', old_file: 'unlinked', seq: 4, prev: JSON.parse(lastOld).mac });
    expect(recs.slice(1).map((r) => [r.seq, r.request_id])).toEqual([[5, 'r3'], [6, 'r4']]);
    // The live log was deleted: not intact, whether or not a copy of the old file is given; with it, every link holds.
    // Alone, the file also starts mid-chain (its first record links to the deleted file's last).
    expect(summary(await verifyAuditFiles([file], { key: TEST_AUDIT_KEY }))).toEqual({ intact: false, records: 3, findings: [{ kind: 'head_missing', file, line: 1, seq: 4 }, { kind: 'file_deleted', file, line: 1 }] });
    expect(summary(await verifyAuditFiles([copy, file], { key: TEST_AUDIT_KEY }))).toEqual({ intact: false, records: 6, findings: [{ kind: 'file_deleted', file, line: 1 }] });
  });

  it('a replaced audit file holding another chain is detected: the writer links to its own last record, not the head it found, and verify names the found lines as foreign', async () => {
    const { file, w, copy, lastOld } = await writerWithThreeRecords();
    // A forged history, chained correctly from genesis and numbered to pass for ours, moved over the live log.
    const forged1 = JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', v: 1, seq: 2, prev: GENESIS, type: 'proxy_stop', pid: 1, reason: 'forged' });
    const forged2 = JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', v: 1, seq: 3, prev: sha256Hex(forged1), type: 'proxy_stop', pid: 1, reason: 'forged' });
    writeFileSync(`${file}.new`, `${forged1}\n${forged2}\n`, { mode: 0o600 });
    renameSync(`${file}.new`, file);
    await w.append(event(3));
    const recs = parsed(file);
    expect(recs).toHaveLength(4);
    expect(recs[2]).toMatchObject({ type: 'audit_file_replaced', reason: 'replaced', old_file: 'unlinked', seq: 4, prev: JSON.parse(lastOld).mac });
    expect(recs[3]).toMatchObject({ seq: 5, request_id: 'r3' });
    const findings: Finding[] = [{ kind: 'foreign', file, line: 3, lines: 2 }, { kind: 'file_deleted', file, line: 3 }];
    expect(summary(await verifyAuditFiles([file], { key: TEST_AUDIT_KEY }))).toEqual({ intact: false, records: 2, findings: [findings[0], { kind: 'head_missing', file, line: 3, seq: 4 }, findings[1]] });
    // With the old file first, the linking record is checked against it and holds: nothing else is reported.
    expect(summary(await verifyAuditFiles([copy, file], { key: TEST_AUDIT_KEY }))).toEqual({ intact: false, records: 5, findings });
  });

  it('a log moved away without SIGUSR1 is followed: the new file links to the moved one, and the pair verifies intact', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY });
    for (let i = 0; i < 3; i++) await w.append(event(i));
    renameSync(file, `${file}.1`);
    await w.append(event(3));
    await w.close();
    expect(parsed(file)[0]).toMatchObject({ type: 'audit_file_replaced', reason: 'deleted', old_file: 'linked', seq: 4 });
    expect(summary(await verifyAuditFiles([`${file}.1`, file], { key: TEST_AUDIT_KEY }))).toEqual({ intact: true, records: 5, findings: [{ kind: 'file_moved', file, line: 1 }] });
  });

  it('a replacement that cannot be opened (writable by others) fails closed until it is fixed, then the writer recovers with the replacement and a gap record', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file, { key: TEST_AUDIT_KEY, ...FAST_RETRY });
    onTestFinished(() => w.close());
    await w.append(event(0));
    unlinkSync(file);
    writeFileSync(file, '');
    chmodSync(file, 0o666);
    await expect(w.append(event(1))).rejects.toBeInstanceOf(AuditWriteFailed);
    expect(w.isHealthy).toBe(false);
    await expect(w.append(event(2))).rejects.toBeInstanceOf(AuditWriteFailed);
    chmodSync(file, 0o600);
    expect(await waitFor(() => w.isHealthy)).toBe(true);
    await w.append(event(3));
    expect(parsed(file).map((r) => [r.seq, r.type])).toEqual([[2, 'audit_file_replaced'], [3, 'audit_recovered'], [4, 'tls_passthrough']]);
    expect(parsed(file)[1]).toMatchObject({ refused: 2, code: 'unknown' });
  });
});

/**
 * A child process that writes the log under a real failure and reports what it saw. The writer is the built one
 * (dist/), as in the lock test above: `npm run build` first.
 */
function runChild(command: string, args: readonly string[], script: string): Record<string, unknown> {
  const writer = JSON.stringify(path.resolve(__dirname, '../../dist/audit/index.js'));
  const r = spawnSync(command, [...args, process.execPath, '--input-type=module', '-e', `const { AuditWriter, AuditKey } = await import(${writer});\n${script}`], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Appends until one fails (bounded), then three more that must be refused at once; names the failure's errno. */
const FAIL_THEN_REFUSE = `
const ev = (i) => ({ type: 'tls_passthrough', request_id: 'r' + i, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });
let failedAt = -1, code = null;
for (let i = 0; i < 2000 && failedAt < 0; i++) {
  await w.append(ev(i)).catch((e) => { failedAt = i; code = e.cause?.code ?? null; });
}
const healthyAfterFailure = w.isHealthy;
let refused = 0;
for (let j = 0; j < 3; j++) await w.append(ev(100000 + j)).then(() => {}, () => { refused++; });
`;
const RECOVER_THEN_CLOSE = `
// The writer announces recovery only through isHealthy: poll it, bounded, while its retry timer runs.
for (const until = Date.now() + 5_000; !w.isHealthy && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
const healthyAgain = w.isHealthy;
for (let j = 0; j < 3; j++) await w.append(ev(200000 + j));
await w.close();
`;

/** Mounting a small tmpfs in a user+mount namespace is how a test gets a real full disk without root. */
const canMountTmpfs = ((): boolean => {
  const at = makeTempWorld('audit-tmpfs');
  const can = spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0"', at.dir]).status === 0;
  at.remove();
  return can;
})();

describe('recovery after failed writes (K4, K6)', () => {
  it.skipIf(!canMountTmpfs)('after a failed write (disk full), appends are refused until a write succeeds, then a gap record on a fresh line continues the chain and the log verifies', () => {
    const base = dir();
    const disk = path.join(base, 'disk');
    mkdirSync(disk);
    const out = path.join(base, 'audit-copy.jsonl');
    // The tmpfs is visible only inside the child's namespace: the child copies the log out when it is done.
    const seen = runChild('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0" && exec "$@"', disk], `
import { closeSync, copyFileSync, openSync, unlinkSync, writeSync } from 'node:fs';
const file = ${JSON.stringify(path.join(disk, 'audit.jsonl'))}, filler = ${JSON.stringify(path.join(disk, 'filler'))};
const w = await AuditWriter.open(file, { key: new AuditKey(Buffer.alloc(32, 0x5a)), retry: { firstMs: 20, maxMs: 200 } });
for (let i = 0; i < 5; i++) await w.append({ type: 'proxy_stop', pid: i, reason: 'before' });
// Fill the disk: whatever room is left in the log's last page goes first, then a write comes up short.
const fd = openSync(filler, 'w');
for (let n = 0; n < 100; n++) { try { writeSync(fd, Buffer.alloc(4096)); } catch (e) { if (e.code !== 'ENOSPC') throw e; break; } }
closeSync(fd);
${FAIL_THEN_REFUSE}
unlinkSync(filler); // room again
${RECOVER_THEN_CLOSE}
copyFileSync(file, ${JSON.stringify(out)});
process.stdout.write(JSON.stringify({ failedAt, code, healthyAfterFailure, refused, healthyAgain }));`);
    expect(seen).toMatchObject({ code: 'ENOSPC', healthyAfterFailure: false, refused: 3, healthyAgain: true });
    const failedAt = seen.failedAt as number;
    return verifyAuditFiles([out], { key: TEST_AUDIT_KEY }).then((v) => {
      // A torn fragment of the failed write may stay (benign); the chain itself has no gap and no broken link.
      expect(v.intact).toBe(true);
      const recovered = lines(out).findIndex((l) => l.includes('"audit_recovered"')) + 1;
      expect(v.findings.filter((f) => f.kind !== 'torn')).toEqual([{ kind: 'recovered', file: out, line: recovered, refused: 4, code: 'ENOSPC' }]);
      // The fragment (when the short write left one) is the line just before the gap record, which starts afresh.
      // Then the writer's audit_torn_line record vouching for it, then the gap record.
      const torn = v.findings.filter((f) => f.kind === 'torn').map((f) => f.line);
      expect(torn).toEqual(v.findings.length > 1 ? [recovered - 2] : []);
      // 5 + the events written before the disk filled, (the torn-line record,) the gap record, 3 after: no hole.
      expect(v.records).toBe(5 + failedAt + torn.length + 1 + 3);
      const seqs = lines(out).flatMap((l) => (l.startsWith('{"ts"') && l.endsWith('}') ? [(JSON.parse(l) as { seq: number }).seq] : []));
      expect(seqs).toEqual(Array.from({ length: v.records }, (_, i) => i + 1));
    });
  });

  it('a log that hit the file-size limit (EFBIG) recovers once it is moved away: refused appends, then a new file linked to the old, with the move and the gap recorded; both verify', async () => {
    const base = dir();
    const file = path.join(base, 'audit.jsonl');
    // RLIMIT_FSIZE of 8 blocks (4 KiB): writes past it fail with EFBIG, as in test/helpers/harness.ts.
    const seen = runChild('sh', ['-c', `trap '' XFSZ; ulimit -f 8; exec "$@"`, 'sh'], `
import { renameSync } from 'node:fs';
const file = ${JSON.stringify(file)};
const w = await AuditWriter.open(file, { key: new AuditKey(Buffer.alloc(32, 0x5a)), retry: { firstMs: 20, maxMs: 200 } });
${FAIL_THEN_REFUSE}
renameSync(file, file + '.1'); // the operator moves the full log away
${RECOVER_THEN_CLOSE}
process.stdout.write(JSON.stringify({ failedAt, code, healthyAfterFailure, refused, healthyAgain }));`);
    expect(seen).toMatchObject({ code: 'EFBIG', healthyAfterFailure: false, refused: 3, healthyAgain: true });
    const failedAt = seen.failedAt as number;
    const recs = parsed(file);
    // The write that hit the limit may have left part of a line in the moved file: a record vouches for it.
    const torn = recs.filter((r) => r.type === 'audit_torn_line').length;
    expect(recs.map((r) => r.type)).toEqual(['audit_file_replaced', ...Array(torn).fill('audit_torn_line'), 'audit_recovered', 'tls_passthrough', 'tls_passthrough', 'tls_passthrough']);
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: recs.length }, (_, i) => failedAt + 1 + i));
    expect(recs[0]).toMatchObject({ reason: 'deleted', old_file: 'linked' });
    expect(recs[1 + torn]).toMatchObject({ refused: 4, code: 'EFBIG' });
    const v = await verifyAuditFiles([`${file}.1`, file], { key: TEST_AUDIT_KEY });
    expect(v.intact).toBe(true);
    expect(v.records).toBe(failedAt + 5 + torn);
    expect(v.findings.filter((f) => f.kind !== 'torn')).toEqual([{ kind: 'file_moved', file, line: 1 }, { kind: 'recovered', file, line: 2 + torn, refused: 4, code: 'EFBIG' }]);
  });
});

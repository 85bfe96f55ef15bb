import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditWriteFailed, AuditWriter, readAuditFile, type AuditEvent } from '../../src/audit/index.js';

const dir = (): string => mkdtempSync(path.join(tmpdir(), 'keyswap-audit-'));
const event = (i: number): AuditEvent => ({ type: 'tls_passthrough', request_id: `r${i}`, destination: { host: 'a.test', port: 443, path_prefix: '/' }, client: null });

describe('AuditWriter', () => {
  it('creates the log 0600', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file);
    await w.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a log others can write to', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    writeFileSync(file, '');
    chmodSync(file, 0o666);
    await expect(AuditWriter.open(file)).rejects.toThrow(/chmod 600/);
  });

  it('group commit: 200 concurrent appends land as 200 valid lines in far fewer fsync batches', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file);
    await Promise.all(Array.from({ length: 200 }, (_, i) => w.append(event(i))));
    const { batches, events } = w.stats;
    await w.close();
    const { records, tornTail } = await readAuditFile(file);
    expect(tornTail).toBe(false);
    expect(records).toHaveLength(200);
    expect(records.every((r) => typeof r.ts === 'string' && r.v === 1)).toBe(true);
    expect(events).toBe(200);
    expect(batches).toBeLessThan(events);
  });

  it('an append resolves only once its line is on disk', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file);
    const seen: boolean[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => w.append(event(i)).then(() => seen.push(readFileSync(file, 'utf8').includes(`"request_id":"r${i}"`)))),
    );
    await w.close();
    expect(seen).toEqual(Array(20).fill(true));
  });

  it('close() flushes what was queued, is idempotent, and later appends are refused', async () => {
    const file = path.join(dir(), 'audit.jsonl');
    const w = await AuditWriter.open(file);
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
    const w = await AuditWriter.open(file);
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
      const { AuditWriter } = await import(${JSON.stringify(path.resolve(__dirname, '../../dist/audit/index.js'))});
      const w = await AuditWriter.open(${JSON.stringify(file)});
      process.stdout.write('open\\n');
      process.stdin.once('data', async () => { await w.close(); process.exit(0); });`], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    await expect(AuditWriter.open(file)).rejects.toThrow(new RegExp(`being written by process ${holder.pid} \\(another keyswap\\)`));
    holder.stdin.write('stop\n');
    await new Promise((resolve) => holder.once('exit', resolve));
    // A lock left by a process that no longer exists (kill -9) does not block the next start.
    writeFileSync(`${file}.lock`, '2147483646\n');
    const w = await AuditWriter.open(file);
    await w.append(event(1));
    await w.close();
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});

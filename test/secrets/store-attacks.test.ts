import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, lchownSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { acquireFileLock } from '../../src/file-lock.js';
import { readStore, rekeyStore } from '../../src/secrets/index.js';
import { writeTrustBundle } from '../../src/tls/local-ca.js';
import { REPO } from '../helpers/cli.js';
import { setEntry, storeWorkspace } from '../helpers/store-workspace.js';

// Issue #18, attacked: what someone who can write the store's directory (not read the keys), or who runs keyswap
// CLI processes side by side, still gets. Each test here failed when it was written.

const workspace = storeWorkspace;
const set = setEntry;
const isRoot = process.getuid?.() === 0;
/** A symlink as someone else plants it: owned by another user when the test can arrange that (root). */
function plant(target: string, at: string): void {
  symlinkSync(target, at);
  if (isRoot) lchownSync(at, 65534, 65534);
}
/** Resolves with what `p` settled to, or 'pending' when it has not settled within `ms`. */
const settled = (p: Promise<unknown>, ms: number): Promise<string> =>
  Promise.race([p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), new Promise<string>((r) => setTimeout(() => r('pending'), ms))]);

describe('rollback: an older copy of the store', () => {
  it('put back with `secrets.enc.revision` deleted is refused (nothing else needs saving)', async () => {
    // SECURITY.md / attacks.md: a rollback needs an older store *and* the revision file saved with it. The mark is
    // a plain number beside the store: deleting it is enough.
    const w = workspace();
    await set(w.store, w.source, 'A', 'leaked-old-value');
    const old = path.join(w.dir, 'old.enc');
    copyFileSync(w.store, old);
    await set(w.store, w.source, 'A', 'rotated-new-value');
    copyFileSync(old, w.store);
    rmSync(`${w.store}.revision`);
    await expect(readStore(w.store, w.source)).rejects.toThrow(/revision|rollback/);
  });

  it('put back with `secrets.enc.revision` emptied is refused (an empty mark is not revision 0)', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'leaked-old-value');
    const old = path.join(w.dir, 'old.enc');
    copyFileSync(w.store, old);
    await set(w.store, w.source, 'A', 'rotated-new-value');
    copyFileSync(old, w.store);
    writeFileSync(`${w.store}.revision`, '\n', { mode: 0o600 });
    await expect(readStore(w.store, w.source)).rejects.toThrow(/revision|rollback/);
  });
});

describe('the store format', () => {
  it('a GCM tag cut to 4 bytes is refused: every tag is 16 bytes', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as Record<string, { tag: string }> & { entries: Record<string, { tag: string }> };
    const cut = (s: { tag: string }): void => {
      s.tag = Buffer.from(s.tag, 'base64').subarray(0, 4).toString('base64');
    };
    cut(doc.wrapped_dek as { tag: string });
    cut(doc.index as { tag: string });
    cut(doc.entries.A as { tag: string });
    writeFileSync(w.store, JSON.stringify(doc), { mode: 0o600 });
    // A 32-bit tag is forged by chance once in 2^32 tries; and each try is a request the agent can make.
    await expect(readStore(w.store, w.source)).rejects.toThrow(/modified|authentication|damaged/);
  });
});

describe('what is at the store path', () => {
  it('a FIFO put in place of the store is refused, not read forever (each blocked read holds a thread of the pool all file operations share)', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    rmSync(w.store);
    if (spawnSync('mkfifo', ['-m', '600', w.store]).status !== 0) return;
    const reading = readStore(w.store, w.source);
    const outcome = await settled(reading, 3000);
    if (outcome === 'pending') {
      const fd = openSync(w.store, 'r+');
      writeSync(fd, '{}');
      closeSync(fd);
    }
    await reading.catch(() => {});
    expect(outcome).toMatch(/^rejected: /);
  });
});

describe('symlinks someone else planted: keyswap never writes through them', () => {
  it('`ca-bundle.pem` planted as a link to the audit log (a file of keyswap’s, elsewhere): the next serve leaves the log alone', async () => {
    // The policy "follow a symlink to an existing regular file of keyswap's user" lets whoever can write the state
    // directory have keyswap overwrite any such file anywhere: the audit log, a key file kept on another volume,
    // the config. Here the bundle every serve writes (0644) replaces the whole audit history.
    const w = workspace();
    const logs = path.join(w.dir, 'logs');
    mkdirSync(logs, { mode: 0o700 });
    const audit = path.join(logs, 'audit.jsonl');
    writeFileSync(audit, '{"the":"audit history"}\n', { mode: 0o600 });
    plant(audit, path.join(w.state, 'ca-bundle.pem'));
    await writeTrustBundle(w.state, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').catch(() => {});
    expect(readFileSync(audit, 'utf8')).toBe('{"the":"audit history"}\n');
  });

  it('`store.key.next` planted before a rekey: the file it names is not overwritten, and store.key does not become a link to it', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const auditKey = path.join(w.state, 'audit.key');
    const auditKeyText = `${Buffer.alloc(32, 9).toString('base64')}\n`;
    writeFileSync(auditKey, auditKeyText, { mode: 0o600 });
    plant(auditKey, `${w.key}.next`);
    await rekeyStore(w.store, w.source, null, () => {}).catch(() => {});
    expect(readFileSync(auditKey, 'utf8')).toBe(auditKeyText);
    expect(lstatSync(w.key).isSymbolicLink() && readlinkSync(w.key) === auditKey).toBe(false);
  });
});

describe('a rekey cut short', () => {
  it('between the store written under the new key and the key file swapped in: the error names store.key.next', async () => {
    // file-store.ts: "a crash in between leaves the new key at `.next`, named by the error the next open gives".
    // The error names only store.key; an operator who deletes the stray `.next` loses every secret.
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const oldKey = readFileSync(w.key);
    await rekeyStore(w.store, w.source, null, () => {});
    // The files as a crash right before the final rename leaves them.
    copyFileSync(w.key, `${w.key}.next`);
    writeFileSync(w.key, oldKey, { mode: 0o600 });
    const err = await readStore(w.store, w.source).then(() => null, (e: Error) => e);
    expect(err?.message).toContain(`${w.key}.next`);
  });
});

describe('one store, one lock, whatever it is called', () => {
  it('writers that reach the store through a symlink and by its real path lose no update (4 × 40)', async () => {
    // The lock is `<path>.lock.d` beside the name given, while the write follows the symlink to the real file: two
    // configs (or a config and an operator) naming the store differently hold two different locks.
    const w = workspace();
    const vol = path.join(w.dir, 'vol');
    mkdirSync(vol, { mode: 0o700 });
    const real = path.join(vol, 'secrets.enc');
    await set(real, w.source, 'C', '0');
    symlinkSync(real, w.store);
    const fixture = path.join(__dirname, 'fixtures', 'increment-loop.mjs');
    await Promise.all([real, w.store, real, w.store].map((file) => new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture, file, w.key, '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`incrementer exited ${code}: ${err}`))));
    })));
    expect((await readStore(real, w.source)).entries.get('C')?.value).toBe('160');
  }, 120_000);
});

describe('the lock directory: crafted entries', () => {
  it('a generation numbered 999999999999 does not make a taker spin forever', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const planted = path.join(`${w.store}.lock.d`, '999999999999');
    writeFileSync(planted, 'free\n');
    const taking = acquireFileLock(w.store, { waitMs: 200 });
    const outcome = await settled(taking, 3000);
    if (outcome === 'pending') rmSync(planted); // let the loop end so the worker can exit
    await taking.then((release) => release(), () => {});
    expect(outcome).not.toBe('pending');
  });

  it('a FIFO as the newest generation does not block a taker forever', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const fifo = path.join(`${w.store}.lock.d`, '000000000099');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    const taking = acquireFileLock(w.store, { waitMs: 200 });
    const outcome = await settled(taking, 3000);
    if (outcome === 'pending') {
      // Unblock the read that waits for a writer, so the worker can exit.
      const fd = openSync(fifo, 'r+');
      writeSync(fd, 'free\n');
      closeSync(fd);
    }
    await taking.then((release) => release(), () => {});
    expect(outcome).not.toBe('pending');
  });
});

describe('the lock across pid namespaces (a second container on the same volume)', () => {
  const unshare = ['--pid', '--fork', '--kill-child', '--mount-proc'];
  const canUnshare = spawnSync('unshare', [...(isRoot ? [] : ['--user', '--map-root-user']), ...unshare, 'true']).status === 0;
  it.skipIf(!canUnshare)('a holder in another pid namespace is not taken for dead', async () => {
    const w = workspace();
    const module = JSON.stringify(path.join(REPO, 'dist/file-lock.js'));
    const holder = spawn('unshare', [...(isRoot ? [] : ['--user', '--map-root-user']), ...unshare, process.execPath, '-e',
      `import(${module}).then(async (l) => { await l.acquireFileLock(${JSON.stringify(w.store)}, { waitMs: 0 }); process.stdout.write('held\\n'); setInterval(() => {}, 1000); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => { holder.kill('SIGKILL'); });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    // Its pid there is 1 or 2; here that pid is another process (or none): the lock must still count as held.
    const taking = acquireFileLock(w.store, { waitMs: 500 });
    const outcome = await settled(taking, 2000);
    await taking.then((release) => release(), () => {});
    expect(outcome).not.toBe('resolved');
  });
});

import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lchownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/atomic-file.js';
import { readStore, rekeyStore, updateStore, type KeySource } from '../../src/secrets/index.js';
import { cli as runCli } from '../helpers/cli.js';
import { setEntry, storeWorkspace, valueOf } from '../helpers/store-workspace.js';

// Issue #18: what someone who can read or write keyswap's state directory can do to the store.

const workspace = storeWorkspace;
const set = setEntry;

function runIncrementers(store: string, key: string, processes: number, each: number): Promise<void> {
  const fixture = path.join(__dirname, 'fixtures', 'increment-loop.mjs');
  return Promise.all(
    Array.from({ length: processes }, () => new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture, store, key, String(each)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`incrementer exited ${code}: ${err}`))));
    })),
  ).then(() => undefined);
}

describe('the store lock: a lock that no two processes hold at once', () => {
  it('4 processes × 40 locked read-modify-write cycles lose no update (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const w = workspace();
      await set(w.store, w.source, 'C', '0');
      await runIncrementers(w.store, w.key, 4, 40);
      expect(await valueOf(w.store, w.source, 'C')).toBe('160');
    }
  }, 120_000);

  it('a lock left by a killed holder is taken over by exactly one of many waiters at a time', async () => {
    const w = workspace();
    await set(w.store, w.source, 'C', '0');
    // A holder killed mid-write: its lock stays behind, naming a process that no longer exists.
    const holder = spawn(process.execPath, ['-e', `import(${JSON.stringify(path.resolve('dist/secrets/file-store.js'))}).then(s => s.updateStore(${JSON.stringify(w.store)}, { kind: 'keyfile', path: ${JSON.stringify(w.key)} }, () => { process.stdout.write('holding\\n'); setInterval(() => {}, 1000); return new Promise(() => {}); }))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    await runIncrementers(w.store, w.key, 6, 15);
    expect(await valueOf(w.store, w.source, 'C')).toBe('90');
  }, 120_000);
});

describe('rekey changes the key material', () => {
  it('passphrase mode: needs a new passphrase; afterwards the old one opens nothing written from then on', async () => {
    const w = workspace();
    const oldFile = path.join(w.dir, 'pass');
    writeFileSync(oldFile, 'correct horse battery staple\n', { mode: 0o600 });
    const old: KeySource = { kind: 'passphrase', passphrase: 'correct horse battery staple', file: oldFile };
    await set(w.store, old, 'A', 'alpha-secret-value');
    await expect(rekeyStore(w.store, old, null, () => {})).rejects.toThrow('--new-passphrase-file');
    const next: KeySource = { kind: 'passphrase', passphrase: 'a completely different passphrase' };
    await rekeyStore(w.store, old, next, () => {});
    await expect(readStore(w.store, { kind: 'passphrase', passphrase: 'correct horse battery staple' })).rejects.toThrow('cannot decrypt');
    expect(await valueOf(w.store, next, 'A')).toBe('alpha-secret-value');
    // The passphrase file keyswap reads now holds the new passphrase.
    expect(readFileSync(oldFile, 'utf8')).toBe('a completely different passphrase\n');
  }, 30_000);

  it('the CLI: `secret rekey --new-passphrase-file` in passphrase mode; without it, a clear refusal', () => {
    const w = workspace();
    const pass = path.join(w.dir, 'pass');
    const newPass = path.join(w.dir, 'new-pass');
    writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
    writeFileSync(newPass, 'the new passphrase for the store\n', { mode: 0o600 });
    const config = path.join(w.dir, 'keyswap.yaml');
    writeFileSync(config, `version: 1\nstate_dir: ./state\nbackend:\n  type: file\n  config: { path: ./state/secrets.enc, passphrase_file: ./pass }\nsecrets:\n  A:\n    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ"\n    inject: { header: Authorization, format: "Bearer {A}" }\n    bindings: [ { host: api.example.com } ]\n`);
    const cli = (args: string[], input?: string) => runCli([...args, '--config', config], { cwd: w.dir, ...(input === undefined ? {} : { input }) });
    expect(cli(['secret', 'set', 'A'], 'alpha-secret-value').status).toBe(0);
    const refused = cli(['secret', 'rekey']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('--new-passphrase-file');
    const ok = cli(['secret', 'rekey', '--new-passphrase-file', newPass]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('the old passphrase opens nothing written from now on');
    expect(readFileSync(pass, 'utf8')).toBe('the new passphrase for the store\n');
    expect(cli(['secret', 'list']).stdout).toMatch(/^A\t/);
  }, 60_000);

  it('a symlinked key file (kept on another volume) is rekeyed where it is; the symlink stays', async () => {
    const w = workspace();
    const elsewhere = path.join(w.dir, 'keys');
    mkdirSync(elsewhere, { mode: 0o700 });
    const realKey = path.join(elsewhere, 'store.key');
    writeFileSync(realKey, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    symlinkSync(realKey, w.key);
    await set(w.store, w.source, 'A', 'alpha-secret-value');
    const before = readFileSync(realKey, 'utf8');
    await rekeyStore(w.store, w.source, null, () => {});
    expect(lstatSync(w.key).isSymbolicLink()).toBe(true);
    expect(readlinkSync(w.key)).toBe(realKey);
    expect(readFileSync(realKey, 'utf8')).not.toBe(before);
    expect(await valueOf(w.store, w.source, 'A')).toBe('alpha-secret-value');
    expect(readdirSync(elsewhere)).toEqual(['store.key']);
  });
});

describe('no shadow copies, no rollback', () => {
  it('after `rm`, no file in the state directory decrypts to the removed value', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'removed-secret-value');
    await set(w.store, w.source, 'B', 'kept-secret-value');
    await updateStore(w.store, w.source, (e) => e.delete('A'));
    for (const f of readdirSync(w.state)) {
      const file = path.join(w.state, f);
      if (!lstatSync(file).isFile() || f === 'store.key') continue;
      let entries: ReadonlyMap<string, { value: string }> = new Map();
      try {
        entries = (await readStore(file, w.source)).entries;
      } catch {
        continue; // not a store
      }
      expect([...entries.values()].map((e) => e.value), f).not.toContain('removed-secret-value');
    }
    expect(existsSync(`${w.store}.prev`)).toBe(false);
  });

  it('an older copy put over the store is refused as a rollback, naming both revisions', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'value-one');
    const old = path.join(w.dir, 'old.enc');
    copyFileSync(w.store, old);
    await updateStore(w.store, w.source, (e) => e.delete('A'));
    copyFileSync(old, w.store);
    await expect(readStore(w.store, w.source)).rejects.toThrow(/at revision 1, but revision 2 was written before.*rollback/);
  });

  it('update times are authenticated: none is in the clear, and the index holds them', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'value-one');
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as { entries: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.entries.A ?? {}).sort()).toEqual(['ct', 'iv', 'tag']);
    expect(readFileSync(w.store, 'utf8')).not.toMatch(/\d{4}-\d\d-\d\dT/);
    expect((await readStore(w.store, w.source)).entries.get('A')?.updatedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

describe('symlinks and temp files', () => {
  it('symlinks: one planted by another user is replaced, never written through; one of keyswap’s own to a missing or foreign file is refused', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'value-one');
    const planted = path.join(w.dir, 'attacker-reads-this');
    const isRoot = process.getuid?.() === 0;
    // Our own dangling link at the store: refused (an operator's link whose target is gone).
    rmSync(w.store);
    symlinkSync(planted, w.store);
    await expect(set(w.store, w.source, 'A', 'value-two')).rejects.toThrow('is a symlink to a missing file');
    expect(existsSync(planted)).toBe(false);
    // Our own link to another user's file: refused. As root, a file handed to nobody stands in; otherwise root's own.
    const foreign = path.join(w.dir, 'foreign');
    writeFileSync(foreign, 'theirs', { mode: 0o644 });
    if (isRoot) chownSync(foreign, 65534, 65534);
    const link = path.join(w.state, 'some-key');
    symlinkSync(isRoot ? foreign : '/etc/passwd', link);
    await expect(writeFileAtomic(link, 'x', 0o600, { followOperatorLink: true })).rejects.toThrow('not a regular file owned by this user');
    // Where keyswap does not expect an operator's link (a CA file, the bundle), any link is replaced.
    await writeFileAtomic(link, 'x', 0o600);
    expect(lstatSync(link).isSymbolicLink()).toBe(false);
    // A link planted by another user (only root can make one here): replaced; its target is never written.
    if (isRoot) {
      rmSync(w.store);
      symlinkSync(planted, w.store);
      lchownSync(w.store, 65534, 65534);
      await set(w.store, w.source, 'A', 'value-three');
      expect(existsSync(planted)).toBe(false);
      expect(lstatSync(w.store).isSymbolicLink()).toBe(false);
      expect(readFileSync(foreign, 'utf8')).toBe('theirs');
    }
  });

  it('an operator’s own link renamed to a name keyswap writes (store.key → ca-bundle.pem) is replaced, and the key it names survives', async () => {
    const w = workspace();
    const elsewhere = path.join(w.dir, 'keys');
    mkdirSync(elsewhere, { mode: 0o700 });
    const realKey = path.join(elsewhere, 'store.key');
    writeFileSync(realKey, 'the-off-volume-key\n', { mode: 0o600 });
    const bundle = path.join(w.state, 'ca-bundle.pem');
    symlinkSync(realKey, bundle); // made by keyswap's user (or root), as the operator's store.key link was
    const { writeTrustBundle } = await import('../../src/tls/local-ca.js');
    await writeTrustBundle(w.state, '-----BEGIN CERTIFICATE-----\n');
    expect(readFileSync(realKey, 'utf8')).toBe('the-off-volume-key\n');
    expect(lstatSync(bundle).isSymbolicLink()).toBe(false);
  });

  it('a failed atomic write leaves no temp file behind', async () => {
    const w = workspace();
    const target = path.join(w.state, 'a-directory');
    mkdirSync(target);
    await expect(writeFileAtomic(target, 'content', 0o600)).rejects.toThrow();
    expect(readdirSync(w.state)).toEqual(['a-directory']);
  });
});

describe('the store format', () => {
  it('a secret named `index` cannot be swapped with the index, and no error quotes a value', async () => {
    const w = workspace();
    await set(w.store, w.source, 'index', 'index-secret-value-canary');
    await set(w.store, w.source, 'B', 'other-secret-value');
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as { index: unknown; entries: Record<string, unknown> };
    [doc.index, doc.entries.index] = [doc.entries.index, doc.index];
    writeFileSync(w.store, JSON.stringify(doc), { mode: 0o600 });
    const err = await readStore(w.store, w.source).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/modified/);
    expect(err?.message).not.toContain('canary');
    expect(err?.message).not.toContain('index-secret');
  });

  it('scrypt: stores are written at N=2^17, and parameters keyswap never writes are refused without deriving', async () => {
    const w = workspace();
    const source: KeySource = { kind: 'passphrase', passphrase: 'correct horse battery staple' };
    await set(w.store, source, 'A', 'alpha');
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as { kek: { scrypt: { N: number } } };
    expect(doc.kek.scrypt.N).toBe(2 ** 17);
    for (const N of [2 ** 40, 2 ** 24, 1024]) {
      doc.kek.scrypt.N = N;
      writeFileSync(w.store, JSON.stringify(doc), { mode: 0o600 });
      await expect(readStore(w.store, { kind: 'passphrase', passphrase: 'correct horse battery staple' })).rejects.toThrow(`N=${N}`);
    }
  }, 30_000);

  it('a key file readable by others stays refused after a chmod race (sanity)', async () => {
    const w = workspace();
    await set(w.store, w.source, 'A', 'alpha');
    chmodSync(w.key, 0o640);
    await expect(readStore(w.store, w.source)).rejects.toThrow('chmod 600');
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStore, rekeyStore, updateStore, type KeySource, type StoredEntry } from '../../src/secrets/index.js';
import { cli as runCli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

const PH = 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ';
function workspace(): { dir: string; config: string; store: string; key: string } {
  const { dir } = tempWorld('store');
  const config = path.join(dir, 'keyswap.yaml');
  writeFileSync(config, `version: 1\nstate_dir: ./state\nsecrets:\n  OPENAI_API_KEY:\n    placeholder: "${PH}"\n    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }\n    bindings: [ { host: api.example.com } ]\n`);
  spawnSync('mkdir', ['-m', '700', path.join(dir, 'state')]);
  return { dir, config, store: path.join(dir, 'state', 'secrets.enc'), key: path.join(dir, 'state', 'store.key') };
}
const cli = (args: string[], input?: string, env: Record<string, string> = {}) => runCli(args, { env, timeoutMs: 20_000, ...(input === undefined ? {} : { input }) });
const entry = (value: string) => ({ value, updatedAt: new Date().toISOString() });
/** Replaces the store's entries with exactly these (a write through the one writer). */
const writeStore = (file: string, source: KeySource, entries: Map<string, StoredEntry>) =>
  updateStore(file, source, (current) => {
    current.clear();
    for (const [k, v] of entries) current.set(k, v);
    return true;
  });
const valueOf = async (file: string, source: KeySource, name: string) => (await readStore(file, source)).entries.get(name)?.value;

describe('keyswap secret: the embedded store', () => {
  it('set (from stdin), list and rm round-trip, never printing a value; store and key are 0600', () => {
    const w = workspace();
    const set = cli(['secret', 'set', 'OPENAI_API_KEY', '--config', w.config], 'canary-store-value\n');
    expect(set.status).toBe(0);
    expect(statSync(w.store).mode & 0o777).toBe(0o600);
    expect(statSync(w.key).mode & 0o777).toBe(0o600);
    expect(readFileSync(w.store, 'utf8')).not.toContain('canary-store-value');
    const list = cli(['secret', 'list', '--config', w.config]);
    expect(list.stdout).toMatch(/^OPENAI_API_KEY\t\d{4}-\d\d-\d\dT/);
    expect(cli(['secret', 'rm', 'OPENAI_API_KEY', '--config', w.config]).status).toBe(0);
    const missing = cli(['secret', 'rm', 'OPENAI_API_KEY', '--config', w.config]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('is not in');
    for (const out of [set, list]) expect(out.stdout + out.stderr).not.toContain('canary-store-value');
  });

  it('the first secret of a config whose state_dir does not exist yet creates it 0700', () => {
    const w = workspace();
    const config = path.join(w.dir, 'fresh.yaml');
    writeFileSync(config, readFileSync(w.config, 'utf8').replace('state_dir: ./state', 'state_dir: ./fresh-state'));
    const r = cli(['secret', 'set', 'OPENAI_API_KEY', '--config', config], 'a-value');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`created ${path.join(w.dir, 'fresh-state')} (700)`);
    expect(statSync(path.join(w.dir, 'fresh-state')).mode & 0o777).toBe(0o700);
  });

  it('refuses an empty value and a value given on the command line', () => {
    const w = workspace();
    expect(cli(['secret', 'set', 'OPENAI_API_KEY', '--config', w.config], '\n').status).toBe(2);
    const argv = cli(['secret', 'set', 'OPENAI_API_KEY', 'value-in-argv', '--config', w.config]);
    expect(argv.status).toBe(2);
    expect(argv.stderr).toContain('refusing a value on the command line');
    const blank = cli(['secret', 'set', 'OPENAI_API_KEY', '--config', w.config], '  \t ');
    expect([blank.status, blank.stderr.trim()]).toEqual([2, 'keyswap: refusing a value that is only whitespace']);
    for (const v of ['two\nlines', 'carriage\rreturn', 'crlf-inside\r\nmore']) {
      const r = cli(['secret', 'set', 'OPENAI_API_KEY', '--config', w.config], v);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('line break');
    }
    expect(existsSync(w.store)).toBe(false);
  });

  it('a key file readable by others is refused with the fix', async () => {
    const w = workspace();
    cli(['secret', 'set', 'OPENAI_API_KEY', '--config', w.config], 'v');
    chmodSync(w.key, 0o644);
    const r = cli(['secret', 'list', '--config', w.config]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`chmod 600 ${w.key}`);
  });

  it('a flipped byte in an entry is reported as tampering with that entry, never as garbage', async () => {
    const w = workspace();
    const source: KeySource = { kind: 'keyfile', path: w.key };
    await writeStore(w.store, source, new Map([['A', entry('alpha')], ['B', entry('beta')]]));
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as { entries: Record<string, { ct: string }> };
    const ct = Buffer.from(doc.entries.B?.ct ?? '', 'base64');
    ct[0] = (ct[0] ?? 0) ^ 1;
    (doc.entries.B as { ct: string }).ct = ct.toString('base64');
    writeFileSync(w.store, JSON.stringify(doc), { mode: 0o600 });
    await expect(readStore(w.store, source)).rejects.toThrow('store entry B failed authentication (the file was modified)');
  });

  it('an entry removed without the key is detected through the encrypted index', async () => {
    const w = workspace();
    const source: KeySource = { kind: 'keyfile', path: w.key };
    await writeStore(w.store, source, new Map([['A', entry('alpha')], ['B', entry('beta')]]));
    const doc = JSON.parse(readFileSync(w.store, 'utf8')) as { entries: Record<string, unknown> };
    delete doc.entries.B;
    writeFileSync(w.store, JSON.stringify(doc), { mode: 0o600 });
    await expect(readStore(w.store, source)).rejects.toThrow('store was modified: names do not match the encrypted index');
  });

  it('a wrong passphrase gives a clear error', async () => {
    const w = workspace();
    await writeStore(w.store, { kind: 'passphrase', passphrase: 'correct horse battery' }, new Map([['A', entry('alpha')]]));
    await expect(readStore(w.store, { kind: 'passphrase', passphrase: 'wrong horse battery' })).rejects.toThrow('cannot decrypt');
    expect(await valueOf(w.store, { kind: 'passphrase', passphrase: 'correct horse battery' }, 'A')).toBe('alpha');
  });

  it('rekey: every entry survives under a new key, and the old key decrypts nothing', async () => {
    const w = workspace();
    const source: KeySource = { kind: 'keyfile', path: w.key };
    await writeStore(w.store, source, new Map([['A', entry('alpha')]]));
    const oldKey = readFileSync(w.key, 'utf8');
    await rekeyStore(w.store, source, null, () => {});
    expect(readFileSync(w.key, 'utf8')).not.toBe(oldKey);
    expect(await valueOf(w.store, source, 'A')).toBe('alpha');
    const oldKeyFile = path.join(w.dir, 'old.key');
    writeFileSync(oldKeyFile, oldKey, { mode: 0o600 });
    await expect(readStore(w.store, { kind: 'keyfile', path: oldKeyFile })).rejects.toThrow('cannot decrypt');
  });

  it('kill -9 during secret set leaves the old or the new value, never corruption (10 kills)', async () => {
    const w = workspace();
    const source: KeySource = { kind: 'keyfile', path: w.key };
    await writeStore(w.store, source, new Map([['K', entry('value-initial')]]));
    const fixture = path.join(__dirname, 'fixtures', 'set-loop.mjs');
    for (let round = 0; round < 10; round++) {
      const child = spawn(process.execPath, [fixture, w.store, w.key], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      // Killed once it reported a varying number of durable writes: the next one is then in flight.
      const writes = 1 + Math.floor(Math.random() * 8);
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.split('\n').length > writes) resolve();
        });
        child.once('exit', () => resolve());
      });
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      const value = (await valueOf(w.store, source, 'K')) ?? '';
      expect(value).toMatch(/^value-(\d+|initial)$/);
      // A write the loop reported durable is never lost; the only other candidate is the one in flight.
      const reported = out.trim().split('\n').filter(Boolean);
      if (reported.length > 0) {
        const last = Number(reported[reported.length - 1]?.slice('value-'.length));
        expect([`value-${last}`, `value-${last + 1}`]).toContain(value);
      }
    }
  });
});

describe('credentials backend (systemd LoadCredential=)', () => {
  it('reads NAME from $CREDENTIALS_DIRECTORY and never walks out of it', async () => {
    const { CredentialsBackend } = await import('../../src/secrets/index.js');
    const { dir } = tempWorld('creds');
    writeFileSync(path.join(dir, 'OPENAI_API_KEY'), 'cred-value\n', { mode: 0o400 });
    writeFileSync(path.join(dir, 'LOOSE'), 'x', { mode: 0o644 });
    const b = await CredentialsBackend.open(null, { CREDENTIALS_DIRECTORY: dir });
    const ctx = { signal: new AbortController().signal };
    expect((await b.fetch('OPENAI_API_KEY', ctx)).reveal()).toBe('cred-value');
    await expect(b.fetch('MISSING', ctx)).rejects.toThrow('not found');
    await expect(b.fetch('../etc/passwd', ctx)).rejects.toThrow('not found');
    await expect(b.fetch('LOOSE', ctx)).rejects.toThrow('chmod 400');
    await expect(CredentialsBackend.open(null, {})).rejects.toThrow('CREDENTIALS_DIRECTORY is not set');
  });
});

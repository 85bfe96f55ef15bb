import { symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BackendUnavailable, FilesBackend, SecretNotFound } from '../../src/secrets/index.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { kubeletWrite } from '../helpers/kubelet-writer.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, the `files` backend: a directory with one file per secret, laid out as Kubernetes mounts a Secret
 * (NAME → ..data/NAME, ..data → ..<timestamp>/, swapped by one rename, the old directory removed after).
 */

const ctx = { signal: new AbortController().signal };

describe('files backend', () => {
  it('reads a Kubernetes-style mount, and the new value after an atomic swap, without reopening', async () => {
    const w = tempWorld('files');
    kubeletWrite(w.dir, 1, { OPENAI_API_KEY: 'first-value\n' });
    const b = await FilesBackend.open(w.dir);
    expect((await b.fetch('OPENAI_API_KEY', ctx)).reveal()).toBe('first-value');
    kubeletWrite(w.dir, 2, { OPENAI_API_KEY: 'second-value\n' });
    expect((await b.fetch('OPENAI_API_KEY', ctx)).reveal()).toBe('second-value');
    expect(await b.list(ctx)).toEqual(['OPENAI_API_KEY']);
  });

  it('refuses a file group or others may read, naming the fix, never the value', async () => {
    const w = tempWorld('files');
    kubeletWrite(w.dir, 1, { TOKEN: 'loose-value' }, 0o644);
    const b = await FilesBackend.open(w.dir);
    const err = await b.fetch('TOKEN', ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailable);
    expect(String((err as Error).message)).toContain('defaultMode: 0400');
    expect(String((err as Error).message)).not.toContain('loose-value');
  });

  it('refuses a link out of the directory, and names that are not file names', async () => {
    const w = tempWorld('files');
    const outside = tempWorld('outside');
    writeFileSync(outside.path('secret'), 'outside-value', { mode: 0o400 });
    symlinkSync(outside.path('secret'), w.path('ESCAPE'));
    const b = await FilesBackend.open(w.dir);
    await expect(b.fetch('ESCAPE', ctx)).rejects.toThrow(/leads out of/);
    for (const name of ['..data', '../secret', 'a/b', '.hidden']) await expect(b.fetch(name, ctx)).rejects.toBeInstanceOf(SecretNotFound);
    await expect(b.fetch('MISSING', ctx)).rejects.toBeInstanceOf(SecretNotFound);
  });

  it('a directory that does not exist is a clear error at start', async () => {
    await expect(FilesBackend.open('/nonexistent/keyswap-files')).rejects.toThrow(/files backend: \/nonexistent\/keyswap-files is not a readable directory/);
  });

  it('through keyswap serve: the value goes upstream, and a rotation is picked up without a restart', async () => {
    const mount = tempWorld('mount');
    kubeletWrite(mount.dir, 1, { TEST_API_KEY: 'mounted-first' });
    const h = await startHarness({ backend: `backend: { type: files, config: { directory: ${mount.dir} } }`, top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }' });
    try {
      await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer mounted-first');
      kubeletWrite(mount.dir, 2, { TEST_API_KEY: 'mounted-second' });
      await new Promise((r) => setTimeout(r, 1500)); // past the cache's 1 s TTL
      await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer mounted-second');
      expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/mounted-(first|second)/);
    } finally {
      await h.close();
    }
  });
});

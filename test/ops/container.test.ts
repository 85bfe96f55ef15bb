import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Docker does not run on these machines: these tests read both files and check each property the sidecar promises.
const compose = parse(readFileSync(path.resolve(__dirname, '../../compose.yaml'), 'utf8')) as { services: { keyswap: Record<string, unknown> }; secrets: Record<string, { file?: string }> };
const dockerfile = readFileSync(path.resolve(__dirname, '../../Dockerfile'), 'utf8');
const svc = compose.services.keyswap;

describe('compose.yaml and Dockerfile: the sidecar', () => {
  it('runs as a non-root UID on a read-only root with a tmpfs /tmp, no capabilities and no new privileges', () => {
    expect(svc.user).toBe('10001:10001');
    expect(dockerfile).toMatch(/\nUSER 10001:10001\n/);
    expect(svc.read_only).toBe(true);
    expect(svc.tmpfs).toEqual([expect.stringMatching(/^\/tmp:/)]);
    expect(svc.cap_drop).toEqual(['ALL']);
    expect(svc.security_opt).toContain('no-new-privileges:true');
  });

  it('publishes on 127.0.0.1 only', () => {
    expect(svc.ports).toEqual(['127.0.0.1:14322:14322']);
  });

  it('keeps state and logs on volumes and takes the BWS token as a file secret, never an environment variable', () => {
    expect(svc.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/:\/var\/lib\/keyswap$/), expect.stringMatching(/:\/var\/log\/keyswap$/)]));
    expect(JSON.stringify(svc.secrets)).toContain('/run/secrets/bws_access_token');
    expect(compose.secrets.bws_access_token?.file).toBeDefined();
    expect(JSON.stringify(svc.environment ?? {})).not.toMatch(/BWS_ACCESS_TOKEN|KEYSWAP_SECRET_/);
  });

  it('has an init process so SIGTERM reaches keyswap, a healthcheck on /healthz, and resource limits', () => {
    expect(svc.init).toBe(true);
    expect(dockerfile).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--"/);
    expect(JSON.stringify(svc.healthcheck)).toContain('keyswap.invalid/healthz');
    expect(dockerfile).toContain('HEALTHCHECK');
    expect(svc.mem_limit).toBeDefined();
    expect(svc.cpus).toBeDefined();
    expect(svc.pids_limit).toBeDefined();
  });

  it('installs only runtime dependencies, without install scripts', () => {
    expect(dockerfile).toContain('npm ci --ignore-scripts');
    expect(dockerfile).toContain('npm prune --omit=dev');
  });
});

// What every bench run starts from: the placeholder and a fresh secret, a temporary directory, the bench CA (written
// where the proxies read it) and the HTTPS echo upstream on loopback.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTlsMaterial } from './tls-material.mjs';
import { startUpstream } from './upstream.mjs';

export async function benchWorld(name) {
  const env = { placeholder: 'sk-PLACEHOLDER-BENCH-0123456789abcdef', secret: `bench-secret-${randomBytes(8).toString('hex')}` };
  const dir = mkdtempSync(path.join(os.tmpdir(), `keyswap-${name}-`));
  const tls = makeTlsMaterial();
  const caPath = path.join(dir, 'bench-ca.pem');
  writeFileSync(caPath, tls.caPem);
  const up = await startUpstream({ ...tls, ...env });
  return { env, dir, tls, caPath, up, common: { dir, caPath, ...env, upstreamPort: up.port } };
}

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { writeTrustBundle } from '../tls/index.js';
import { writeAgentConfigFiles } from './agent-env.js';
import { CliError, EXIT } from './exit-codes.js';

/** What an agent's runtimes are pointed at: keyswap's CA, and the bundle (system roots + CA) beside the files derived from it. */
export interface AgentTrust { readonly caPath: string; readonly bundlePath: string }

/**
 * Where this user finds keyswap's CA. In the state directory when keyswap runs as this user (the quick start);
 * otherwise beside the config, where `keyswap install` publishes ca.pem for agents of a keyswap under its own UID,
 * whose state directory they cannot read. The bundle and the wget/PHP files derived from a published CA are
 * written for this user in a private directory of its own, since the service's are out of its reach.
 */
export async function agentTrust(config: Config, env: Readonly<Record<string, string | undefined>>): Promise<AgentTrust> {
  const own = { caPath: path.join(config.stateDir, 'ca.pem'), bundlePath: path.join(config.stateDir, 'ca-bundle.pem') };
  if (await isReadable(own.caPath) && await isReadable(own.bundlePath)) return own;
  const published = path.join(path.dirname(config.file), 'ca.pem');
  const pem = await readFile(published, 'utf8').catch(() => null);
  if (pem === null) {
    throw new CliError(`cannot read keyswap's CA certificate: neither ${own.caPath} nor ${published} is readable by this user; keyswap serve makes the first, sudo keyswap install publishes the second`, EXIT.usage);
  }
  const dir = await privateDir(env, createHash('sha256').update(pem).digest('hex').slice(0, 16));
  const bundlePath = await writeTrustBundle(dir, pem);
  await writeAgentConfigFiles(bundlePath);
  return { caPath: published, bundlePath };
}

/** Whether keyswap's state directory exists and this user cannot read it: keyswap runs under a UID of its own. */
export async function isStateDirPrivate(config: Config): Promise<boolean> {
  return access(config.stateDir, constants.R_OK | constants.X_OK).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'EACCES' || err.code === 'EPERM',
  );
}

/**
 * `$XDG_CACHE_HOME/keyswap/agent-<ca>` (or ~/.cache/…), else a directory of this user's own under the temporary
 * directory. A path there that another user made, or a symlink, is refused: the bundle decides what the agent trusts.
 */
async function privateDir(env: Readonly<Record<string, string | undefined>>, id: string): Promise<string> {
  const cache = env.XDG_CACHE_HOME ?? (env.HOME === undefined ? undefined : path.join(env.HOME, '.cache'));
  const candidates = [...(cache === undefined ? [] : [path.join(cache, 'keyswap', `agent-${id}`)]), path.join(tmpdir(), `keyswap-agent-${process.getuid?.() ?? 0}-${id}`)];
  for (const dir of candidates) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const st = await lstat(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) continue;
      return dir;
    } catch {
      // not writable here: try the next place
    }
  }
  throw new CliError(`cannot make a private directory for keyswap's CA bundle (tried ${candidates.join(', ')})`, EXIT.runtime);
}

async function isReadable(file: string, mode: number = constants.R_OK): Promise<boolean> {
  return access(file, mode).then(() => true, () => false);
}

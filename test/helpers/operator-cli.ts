import { createHash } from 'node:crypto';
import path from 'node:path';
import { cliCollect } from './cli.js';
import type { Harness } from './harness.js';

/** A client's token as `clients:` names it. */
export const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

/** The access request id (ar-…) in a CLI's or a tool's answer, or ''. */
export const idOf = (t: string): string => /ar-[0-9a-f]{8}/.exec(t)?.[0] ?? '';

/** The operator's side of a running harness: its config file, the CLI against it, and a client's proxy URL. */
export function operatorCli(harness: () => Harness): {
  configPath: () => string;
  op: (...args: string[]) => ReturnType<typeof cliCollect>;
  proxyAs: (name: string, token: string) => string;
} {
  const configPath = (): string => path.join(harness().dir, 'keyswap.yaml');
  return {
    configPath,
    op: (...args) => cliCollect([...args, '--config', configPath()], { cwd: harness().dir }),
    proxyAs: (name, token) => `http://${name}:${token}@127.0.0.1:${harness().proxyPort}`,
  };
}

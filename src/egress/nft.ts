import { spawn } from 'node:child_process';

export class NftError extends Error {
  override readonly name = 'NftError';
}

/**
 * Runs Debian's `nft` (nftables' own tool): a script on stdin (`nft -f -`, one atomic transaction), or a listing
 * (`nft -j …`). Its own words come back in the error when it refuses.
 */
export function runNft(args: readonly string[], input: string | null = null): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', [...args], { stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr?.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    child.once('error', (e: NodeJS.ErrnoException) => reject(new NftError(e.code === 'ENOENT' ? 'nft is not installed (Debian: apt-get install nftables)' : `cannot run nft: ${e.message}`)));
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new NftError(`nft refused: ${err.trim() || `exit ${code ?? 'signal'}`}`))));
    if (input !== null && child.stdin !== null) {
      // nft may exit before reading it all (a refused script): its exit code says so, not an EPIPE here.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

/** A locked UID as the kernel has it now: what its chain accepts. */
export interface LockedUid { readonly uid: number; readonly allows: readonly string[] }

/** The UIDs locked in keyswap's table, read back from the kernel (`nft -j list table inet keyswap`). */
export async function lockedUids(table: string): Promise<LockedUid[]> {
  let text: string;
  try {
    text = await runNft(['-j', 'list', 'table', 'inet', table]);
  } catch (err) {
    if (err instanceof NftError && /No such file or directory|does not exist/.test(err.message)) return [];
    throw err;
  }
  const items = (JSON.parse(text) as { nftables?: Record<string, unknown>[] }).nftables ?? [];
  const map = items.find((i) => (i.map as { name?: string } | undefined)?.name === 'locked')?.map as { elem?: unknown[] } | undefined;
  const uids = (map?.elem ?? []).map((e) => (Array.isArray(e) ? Number(e[0]) : Number(e))).filter((n) => Number.isInteger(n));
  return uids.map((uid) => ({
    uid,
    allows: items
      .filter((i) => (i.rule as { chain?: string } | undefined)?.chain === `uid_${uid}`)
      .map((i) => describeRule((i.rule as { expr: unknown[] }).expr))
      .filter((d): d is string => d !== null),
  }));
}

/** An accept rule as `address port/proto`; null for the closing rejects. */
function describeRule(expr: readonly unknown[]): string | null {
  if (!expr.some((e) => typeof e === 'object' && e !== null && 'accept' in e)) return null;
  let addr = 'any local address';
  let port = '';
  let proto = 'tcp';
  for (const e of expr) {
    const m = (e as { match?: { left?: { payload?: { protocol?: string; field?: string } }; right?: unknown } }).match;
    const p = m?.left?.payload;
    if (p?.field === 'daddr') addr = String(m?.right);
    if (p?.field === 'dport') {
      port = String(m?.right);
      proto = p.protocol ?? proto;
    }
  }
  return `${addr.includes(':') ? `[${addr}]` : addr}:${port}/${proto}`;
}

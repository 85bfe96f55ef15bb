import { open } from 'node:fs/promises';

/** One writer's files, oldest first: its name is the `chain_id` of their records less the start's nonce. */
export interface ChainFiles { readonly name: string; readonly files: readonly string[] }

/**
 * Several replicas' audit files, sorted into chains: files whose first record names the same writer (a pod's or a
 * host's name; each start adds its own nonce) continue one chain, in the order given. Files written before records
 * had a `chain_id` form one chain named `(unnamed)`.
 */
export async function chainsOf(files: readonly string[]): Promise<ChainFiles[]> {
  const chains = new Map<string, string[]>();
  for (const file of files) {
    const name = writerOf(await firstLine(file));
    chains.set(name, [...(chains.get(name) ?? []), file]);
  }
  return [...chains].map(([name, list]) => ({ name, files: list }));
}

function writerOf(line: string): string {
  const m = /^\{"ts":"[^"]*","v":\d+,"seq":\d+,"prev":"[0-9a-f]*","chain_id":"([A-Za-z0-9._-]+)-[0-9a-f]+"/.exec(line);
  return m?.[1] ?? '(unnamed)';
}

/** The first line of a file (at most 4 KiB of it): enough for the fields a record starts with. */
async function firstLine(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const nl = text.indexOf('\n');
    return nl < 0 ? text : text.slice(0, nl);
  } finally {
    await fh.close();
  }
}

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';

export const OPERATOR_FILE = 'operator.json';

const revoked = z.object({ client: z.string(), fingerprint: z.string(), at: z.string(), by: z.enum(['cli', 'ui']) });
const fileSchema = z.object({
  version: z.literal(1),
  lockdown: z.object({ reason: z.string().nullable(), since: z.string(), by: z.enum(['cli', 'ui']) }).nullable(),
  revoked: z.array(revoked),
});

/** What an operator decided that outlives the process: the lockdown and the revoked clients' credentials. */
export type OperatorRecord = z.infer<typeof fileSchema>;

export const EMPTY_RECORD: OperatorRecord = { version: 1, lockdown: null, revoked: [] };

/**
 * `state_dir/operator.json` (0600, atomic): read at start so a lockdown survives a restart, and a client revoked
 * from the console (which cannot edit a config file it does not own) stays revoked. A damaged file stops keyswap
 * rather than lift a lockdown by accident.
 */
export async function readOperatorFile(stateDir: string): Promise<OperatorRecord> {
  const file = path.join(stateDir, OPERATOR_FILE);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new Error(`cannot read ${file} (${err.code ?? 'error'})`);
  });
  if (text === null) return EMPTY_RECORD;
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch { /* reported below */ }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not keyswap's operator state (damaged?): it holds the lockdown and revoked clients; fix or remove it`);
  return parsed.data;
}

export async function writeOperatorFile(stateDir: string, record: OperatorRecord): Promise<void> {
  await writeFileAtomic(path.join(stateDir, OPERATOR_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

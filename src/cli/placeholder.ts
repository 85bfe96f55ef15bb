import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A fresh placeholder: `<prefix>PLACEHOLDER-<26 random base32 chars>`. 130 random bits make it unique and never a
 * substring of another; the marker lets keyswap skip every header that holds none.
 */
export function mintPlaceholder(prefix = 'sk-'): string {
  const bytes = randomBytes(26);
  let tail = '';
  for (const b of bytes) tail += CROCKFORD[b & 31];
  return `${prefix}PLACEHOLDER-${tail}`;
}

export async function placeholderCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { prefix: { type: 'string', default: 'sk-' } }, strict: true });
  if (!/^[A-Za-z0-9_-]{0,16}$/.test(values.prefix)) {
    io.stderr.write('keyswap: --prefix takes up to 16 letters, digits, `_` or `-`\n');
    return EXIT.usage;
  }
  io.stdout.write(`${mintPlaceholder(values.prefix)}\n`);
  return EXIT.ok;
}

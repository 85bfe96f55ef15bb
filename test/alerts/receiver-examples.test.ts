import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signedHeaders } from '../../src/alerts/index.js';
import { REPO } from '../helpers/cli.js';

/*
 * docs/alerts.md's Python receiver, run with python3 against deliveries signed as keyswap signs them (the headers
 * and body the webhooks test's receiver verified with the standardwebhooks package): it accepts them and refuses a
 * tampered body, a stale timestamp and a wrong key.
 */
const doc = readFileSync(path.join(REPO, 'docs/alerts.md'), 'utf8');
const python = /```python\n([\s\S]*?)```/.exec(doc)?.[1] as string;

function runPython(secret: string, headers: Record<string, string>, body: string): string {
  const script = `${python}\nimport sys\nargs = json.loads(sys.stdin.read())\ntry:\n    print(verify(args["secret"], args["headers"], args["body"].encode())["type"])\nexcept Exception as e:\n    print("refused:", e)\n`;
  return execFileSync('python3', ['-c', script], { input: JSON.stringify({ secret, headers, body }) }).toString().trim();
}

describe('docs/alerts.md receivers', () => {
  it('the Python receiver accepts what keyswap signs, as the standardwebhooks package does, and refuses tampering', () => {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const body = JSON.stringify({ type: 'honeytoken', timestamp: new Date().toISOString(), data: { secret_name: 'HONEY' } });
    const headers = signedHeaders(secret, 'msg_test', body, new Date());
    expect((new Webhook(secret).verify(body, headers) as { type: string }).type).toBe('honeytoken');
    expect(runPython(secret, headers, body)).toBe('honeytoken');
    expect(runPython(secret, headers, body.replace('HONEY', 'HONEX'))).toBe('refused: bad signature');
    expect(runPython(`whsec_${randomBytes(24).toString('base64')}`, headers, body)).toBe('refused: bad signature');
    const stale = signedHeaders(secret, 'msg_test', body, new Date(Date.now() - 3600_000));
    expect(runPython(secret, stale, body)).toBe('refused: stale timestamp');
  });
});

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { namesToFetch, loadConfig } from '../config/index.js';
import { FileBackend } from '../secrets/index.js';
import type { CliIo } from './io.js';
import { mintPlaceholder } from './placeholder.js';
import { serve } from './serve-command.js';
import { prepareStateDir } from './state-dir.js';

const CONFIG = 'keyswap.yaml';

function quickstartConfig(): string {
  return `# keyswap.yaml: written by \`npm start\` on first run. Every key is explained in bindings.example.yaml.
version: 1
listen: 127.0.0.1:14322
state_dir: ./certs            # keyswap's CA (ca.pem, ca-key.pem 0600), the encrypted store and its key
unmatched_destination_policy: forward_unmodified
tls_termination: bound        # only hosts named below are decrypted; everything else is an opaque tunnel
audit: { path: ./audit.jsonl }
backend: { type: file }       # the embedded AES-256-GCM store at ./certs/secrets.enc

secrets:
  OPENAI_API_KEY:
    placeholder: "${mintPlaceholder('sk-')}"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings:
      - { host: api.openai.com, methods: [GET, POST], paths: ["/v1/**"] }
  ANTHROPIC_API_KEY:
    placeholder: "${mintPlaceholder('sk-ant-')}"
    inject: [{ header: x-api-key, format: "{ANTHROPIC_API_KEY}" }, { header: Authorization, format: "Bearer {ANTHROPIC_API_KEY}" }]
    bindings:
      - { host: api.anthropic.com, methods: [POST], paths: ["/v1/messages", "/v1/messages/**"] }
  GITHUB_TOKEN:
    placeholder: "${mintPlaceholder('ghp_')}"
    inject: { header: Authorization, format: "Bearer {GITHUB_TOKEN}" }
    bindings:
      - { host: api.github.com, methods: [GET], paths: ["/repos/**", "/user", "/search/**"] }
`;
}

/**
 * `npm start`: the one command that takes a fresh clone to a running keyswap. Writes keyswap.yaml with fresh
 * placeholders if there is none (never overwrites), makes the state directory private, says which secrets still
 * need a value, then serves.
 */
export async function quickstart(args: string[], io: CliIo): Promise<number> {
  const file = path.join(io.cwd, CONFIG);
  try {
    const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    await fh.writeFile(quickstartConfig());
    await fh.close();
    io.stdout.write(`created ${CONFIG} with fresh placeholders for OPENAI_API_KEY, ANTHROPIC_API_KEY and GITHUB_TOKEN\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    io.stdout.write(`using the existing ${CONFIG}\n`);
  }
  const config = await loadConfig(file);
  // A fresh clone checks certs/ out world-readable (it holds a README); keyswap's key material needs it private.
  await prepareStateDir(config.stateDir, io);
  if (config.backend.type === 'file') {
    const stored = new Set(await (await FileBackend.open(config.backend, io.env)).list());
    const missing = config.secrets.flatMap((s) => namesToFetch(s)).filter((n) => !stored.has(n));
    if (missing.length > 0) {
      io.stdout.write(
        `\nNo value stored yet for: ${missing.join(', ')}. Until there is one, requests using those placeholders get 503.\n` +
          `Store each once (read from stdin or a no-echo prompt, never from argv):\n` +
          missing.map((n) => `  npm run keyswap -- secret set ${n}\n`).join('') +
          '\n',
      );
    }
  }
  return serve(['--config', file, ...args], io);
}

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AuditKey } from '../../src/audit/index.js';

/** One audit key for a test file's writers and verifiers: the key as an object, and the 0600 file the CLI reads. */
const bytes = Buffer.alloc(32, 0x5a);
export const TEST_AUDIT_KEY = new AuditKey(bytes);
export const TEST_AUDIT_KEY_FILE = path.join(mkdtempSync(path.join(tmpdir(), 'keyswap-audit-key-')), 'audit.key');
writeFileSync(TEST_AUDIT_KEY_FILE, `${bytes.toString('base64')}\n`, { mode: 0o600 });

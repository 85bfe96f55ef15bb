import { afterAll } from 'vitest';
import { AuditKey } from '../../src/audit/index.js';
import { makeTempWorld } from './temp-world.js';

/** One audit key for a test file's writers and verifiers: the key as an object, and the 0600 file the CLI reads. */
const bytes = Buffer.alloc(32, 0x5a);
export const TEST_AUDIT_KEY = new AuditKey(bytes);
const world = makeTempWorld('audit-key');
// Registered on the importing test file: the key serves all its tests, and goes with the file.
afterAll(() => world.remove());
export const TEST_AUDIT_KEY_FILE = world.write('audit.key', `${bytes.toString('base64')}\n`, 0o600);

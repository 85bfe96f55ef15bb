import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { looseWriteAccess } from '../../../src/config/write-access.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on the row-139 fix: looseWriteAccess() checks every directory on the way and the final file, but never
 * who owns a SYMLINK on the way. In a sticky directory (/tmp, /run/user-shared, a 1777 drop directory), another
 * user (uid 65534 here) may own the link keyswap's listen_tls.client_ca_file (or the config, or extra_ca_file)
 * names: the check passes (the link's target is root's), yet that user can delete and re-create the link at any
 * time (sticky lets an owner remove its own entries), pointing keyswap's next re-read at any other root-owned PEM
 * (another trust domain's bundle, the system CA store).
 */
describe('a symlink owned by another user on the way to a checked file', () => {
  it('is reported: its owner can change what the path reads', () => {
    const w = tempWorld('wa-link');
    chmodSync(w.dir, 0o755);
    const drop = path.join(w.dir, 'drop');
    mkdirSync(drop);
    chmodSync(drop, 0o1777); // like /tmp
    const real = path.join(w.dir, 'bundle-a.pem');
    const other = path.join(w.dir, 'bundle-b.pem');
    writeFileSync(real, 'root-owned bundle A\n', { mode: 0o644 });
    writeFileSync(other, 'root-owned bundle B\n', { mode: 0o644 });
    const link = path.join(drop, 'client-ca.pem');
    execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'ln', '-s', real, link]);
    expect(lstatSync(link).uid).toBe(65534);
    return looseWriteAccess(link).then((found) => {
      // The attacker can indeed retarget it:
      execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'ln', '-sfn', other, link]);
      expect(readlinkSync(link)).toBe(other);
      expect(found, 'a link another user owns (and can replace) passed the write-access check').not.toBeNull();
    });
  });
});

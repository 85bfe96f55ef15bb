import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const UNIT = path.resolve(__dirname, '../../systemd/keyswap.service');

describe('systemd/keyswap.service', () => {
  it('scores 1.2 or lower on systemd-analyze security (agent-vault-proxy’s unit scores 3.4)', () => {
    // .ci/run installs Debian's systemd package, which brings systemd-analyze.
    const out = execFileSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for keyswap\.service: ([\d.]+)/.exec(out)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(1.2);
  });

  it('runs as its own user with private state, logs and credentials, and leaves V8 its executable memory', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['User=keyswap', 'StateDirectory=keyswap', 'StateDirectoryMode=0700', 'LogsDirectory=keyswap', 'ConfigurationDirectory=keyswap', 'NoNewPrivileges=yes', 'UMask=0077']) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(unit).toMatch(/\nLoadCredential(Encrypted)?=keyswap-store-key:/);
    expect(unit).not.toMatch(/\nMemoryDenyWriteExecute=yes/);
  });

  it('caps its memory and tasks (issue #33): a flood is refused by systemd, not felt by the machine', () => {
    const unit = readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/\nMemoryMax=\d+[MG]\n/);
    expect(unit).toMatch(/\nTasksMax=\d+\n/);
  });
});

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// DESIGN.md §3: cli → proxy → {policy, inject, mint, secrets, audit, tls} → {config, wire}. Peers never import each
// other; wire/ (every wire-format question, answered once) imports nothing. secret.ts, the opaque value, is for all.
// metrics/ (issue #6) sits beside proxy: it reads audit events, and only cli/ wires it in. scrub/ (issue #32) is a
// peer of inject/ and mint/: it matches and replaces; proxy/ gathers what to scrub and calls it per response.
const ALLOWED: Record<string, readonly string[]> = {
  cli: ['proxy', 'shared', 'mcp', 'control', 'console', 'egress', 'metrics', 'policy', 'inject', 'mint', 'scrub', 'secrets', 'audit', 'tls', 'usage', 'alerts', 'config', 'wire', 'log.ts', 'atomic-file.ts', 'secret.ts'],
  // control/ (issue #28) implements the gate proxy/ asks (OperatorGate) and reads the snapshot it serves: types only
  // (checked below); console/ serves the control API and nothing else.
  control: ['proxy', 'audit', 'config', 'atomic-file.ts'],
  console: ['control', 'audit'],
  // egress/ (issue #29) writes nftables rules for the listeners it is given; it knows nothing else of keyswap.
  egress: [],
  // mcp/ (issue #30) is the agent-facing MCP server over the configuration; it never reads a secret.
  mcp: ['config'],
  // shared/ (issue #29) answers what proxy/ asks of limits and minting (usage/ and mint/ interfaces) over Redis.
  shared: ['usage', 'mint', 'secrets', 'config', 'log.ts', 'secret.ts'],
  proxy: ['policy', 'inject', 'mint', 'scrub', 'secrets', 'audit', 'tls', 'usage', 'config', 'wire', 'log.ts', 'secret.ts'],
  usage: ['config', 'log.ts', 'atomic-file.ts'],
  alerts: ['audit', 'config', 'log.ts', 'atomic-file.ts', 'secret.ts'],
  scrub: ['wire', 'secret.ts'],
  mint: ['config', 'secret.ts'],
  policy: ['config', 'wire'],
  inject: ['config', 'wire'],
  secrets: ['config', 'log.ts', 'atomic-file.ts', 'file-lock.ts', 'secret.ts'],
  audit: ['config', 'log.ts', 'file-lock.ts', 'atomic-file.ts'],
  tls: ['config', 'log.ts', 'atomic-file.ts'],
  metrics: ['audit'],
  config: [],
  wire: [],
};
const IO_MODULES = /from 'node:(fs|fs\/promises|net|tls|http|https|child_process|dgram|dns)'/;

const src = path.resolve(__dirname, '../../src');
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('module layout', () => {
  it('imports only flow along DESIGN.md §3, and peers never import each other', () => {
    const violations: string[] = [];
    for (const file of files(src)) {
      const from = path.relative(src, file).split(path.sep)[0] as string;
      const allowed = ALLOWED[from];
      if (allowed === undefined) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.\.\/[^']+)'/g)) {
        const target = path.relative(src, path.resolve(path.dirname(file), m[1] as string)).split(path.sep)[0] as string;
        const name = target.replace(/\.js$/, '.ts');
        if (target !== from && !allowed.includes(name)) violations.push(`${path.relative(src, file)} imports ${m[1]}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('control/ imports only types from proxy/: the operator side never reaches into the request path', () => {
    const reaching: string[] = [];
    for (const file of files(path.join(src, 'control'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^import (type )?[^;]*from '\.\.\/proxy\/[^']+';/gm)) if (m[1] === undefined) reaching.push(`${path.relative(src, file)}: ${m[0]}`);
    }
    expect(reaching).toEqual([]);
  });

  it('policy/ does no I/O', () => {
    const offenders = files(path.join(src, 'policy')).filter((f) => IO_MODULES.test(readFileSync(f, 'utf8')) || /process\.|Date\.now|console\./.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('only cli/ reads process.env', () => {
    const offenders = files(src).filter((f) => !f.includes(`${path.sep}cli${path.sep}`) && /process\.env/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => path.relative(src, f))).toEqual([]);
  });
});

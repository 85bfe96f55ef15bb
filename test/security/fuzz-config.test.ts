import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig, type Config } from '../../src/config/index.js';
import { prng } from '../helpers/prng.js';

const CASES = Number(process.env.FUZZ_CONFIG_CASES ?? 2_000);
const FILE = '/fuzz/keyswap.yaml';
const BASE = readFileSync(path.resolve(__dirname, '../../bindings.example.yaml'), 'utf8');

/** Mutations that must always be rejected: each one would widen where a secret may go, or hide a mistake. */
const WIDENING: readonly [string, (text: string) => string][] = [
  ['host becomes *', (t) => t.replace('host: api.openai.com', 'host: "*"')],
  ['host on a public suffix', (t) => t.replace('host: api.openai.com', 'host: "*.com"')],
  ['methods emptied', (t) => t.replace('methods: [POST], paths: ["/v1/chat', 'methods: [], paths: ["/v1/chat')],
  ['paths emptied', (t) => t.replace('paths: ["/v1/chat/completions", "/v1/responses/**"]', 'paths: []')],
  ['method *', (t) => t.replace('methods: [POST], paths: ["/v1/chat', 'methods: ["*"], paths: ["/v1/chat')],
  ['placeholder shared', (t) => t.replace('sk-ant-PLACEHOLDER-01HXY1234567890ABCDEFGH', 'sk-PLACEHOLDER-01HXY1234567890ABCDEFGH')],
  ['placeholder nested', (t) => t.replace('sk-ant-PLACEHOLDER-01HXY1234567890ABCDEFGH', 'sk-PLACEHOLDER-01HXY1234567890ABCDEFGH-X')],
  ['placeholder too short', (t) => t.replace('sk-PLACEHOLDER-01HXY1234567890ABCDEFGH', 'sk-PLACEHOLDER-1')],
  ['unknown key in a binding', (t) => t.replace('{ host: api.openai.com,', '{ hosts: api.openai.com, host: api.openai.com,')],
  ['wildcards without the opt-in', (t) => t.replace('allow_wildcard_hosts: true', 'allow_wildcard_hosts: false')],
  ['bindings emptied', (t) => t.replace(/bindings:\n {6}# Scope[^\n]*\n[^\n]*\n[^\n]*\n/, 'bindings: []\n')],
  ['format without its slot', (t) => t.replace('format: "Bearer {OPENAI_API_KEY}"', 'format: "Bearer"')],
  ['an unknown injector', (t) => t.replace('inject: { type: basic }', 'inject: { type: sigv4 }')],
  ['scheme in a host', (t) => t.replace('host: api.openai.com', 'host: "https://api.openai.com"')],
];

function isWellFormed(err: unknown): boolean {
  return err instanceof ConfigErrors && err.errors.length > 0 && err.errors.every((e) => /^\/fuzz\/keyswap\.yaml:\d+: \S.*: \S/.test(e.message) && e.line >= 1);
}

describe('config mutation fuzzing', () => {
  it.each(WIDENING)('%s is rejected with a file:line: field message', (_name, mutate) => {
    const text = mutate(BASE);
    expect(text).not.toBe(BASE);
    let accepted: Config | null = null;
    try {
      accepted = parseConfig(text, FILE);
    } catch (err) {
      expect(isWellFormed(err)).toBe(true);
    }
    expect(accepted).toBeNull();
  });

  it(`${CASES} random line-level mutations: each is accepted or rejected with file:line messages, never a crash`, () => {
    const r = prng(Number(process.env.FUZZ_SEED ?? 7));
    const lines = BASE.split('\n');
    const tokens = ['', '*', '[]', '{}', '- x', ':', '"', 'null', '~', '!!binary x', '&a', '*a', '0', '-1', '99999', 'true', '\t', 'PLACEHOLDER'];
    let rejected = 0;
    for (let i = 0; i < CASES; i++) {
      const copy = [...lines];
      for (let m = 0; m < 1 + Math.floor(r() * 3); m++) {
        const at = Math.floor(r() * copy.length);
        const kind = r();
        if (kind < 0.3) copy.splice(at, 1);
        else if (kind < 0.6) copy[at] = (copy[at] ?? '').replace(/:\s*(\S.*)$/, `: ${tokens[Math.floor(r() * tokens.length)]}`);
        else if (kind < 0.8) copy.splice(at, 0, copy[Math.floor(r() * copy.length)] ?? '');
        else copy[at] = ` ${copy[at] ?? ''}`;
      }
      try {
        parseConfig(copy.join('\n'), FILE);
      } catch (err) {
        if (!isWellFormed(err)) throw new Error(`mutation ${i} gave a malformed error: ${String(err)}`);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  }, 600_000);
});

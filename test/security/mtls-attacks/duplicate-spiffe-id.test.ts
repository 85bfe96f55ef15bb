import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../../src/config/index.js';

/*
 * Plain bug: two clients may name the same spiffe_id. authenticate() then takes whichever comes first in the file
 * (client-auth.ts `[...clients.values()].find`), silently: the second client's narrower (or wider) secrets never
 * apply, and a reload that removes or reorders the first moves the same certificate to the other client's secrets
 * on its next connection. Token clients cannot collide (their names differ); spiffe IDs should not either.
 */
describe('two clients with one spiffe_id', () => {
  it('is a config error', () => {
    const text = `version: 1
listen_tls: { listen: "127.0.0.1:0", cert_file: c, key_file: k, client_ca_file: b }
secrets:
  A: { placeholder: "sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAAAA", inject: { header: X, format: "{A}" }, bindings: [{ host: a.test }] }
  B: { placeholder: "sk-PLACEHOLDER-BBBBBBBBBBBBBBBBBBBBBBBB", inject: { header: Y, format: "{B}" }, bindings: [{ host: b.test }] }
clients:
  narrow: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [A] }
  wide: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [A, B] }
`;
    let messages: string[] = [];
    try {
      parseConfig(text, '/c/k.yaml');
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      messages = e.errors.map((x) => x.message);
    }
    expect(messages.join('\n'), 'accepted: the certificate is silently client `narrow`').toMatch(/spiffe_id/);
  });
});

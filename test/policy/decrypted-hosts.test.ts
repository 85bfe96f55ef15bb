import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { compilePolicy, decryptedHosts } from '../../src/policy/index.js';
import { routeConnect } from '../../src/proxy/connect-route.js';
import { constraintsFor, uncoveredHosts } from '../../src/tls/name-constraints.js';
import { SECRET_A, SECRET_B, SECRET_BASIC, SECRET_Q } from './fixtures.js';

const SECRETS = [SECRET_A, SECRET_B, SECRET_Q, SECRET_BASIC];
/** Bound hosts and ports, names under and beside the wildcard, unbound hosts, and an IP address. */
const TARGETS = [
  'api.a.test:443', 'api.b.test:443', 'plain.a.test:443', 'plain.a.test:80', 'git.test:8443', 'git.test:443', 'maps.test:443',
  'ok.wild.test:443', 'other.wild.test:443', 'a.b.wild.test:443', 'wild.test:443', 'unbound.test:443', 'api.a.test.evil.test:443', '10.0.0.1:443',
];

describe('the CA made for a config can sign for every host that config decrypts', () => {
  it.each([
    ['bound', 'forward_unmodified'],
    ['bound', 'deny'],
    ['all', 'deny'],
    ['all', 'forward_unmodified'],
  ] as const)('tls_termination: %s, unmatched_destination_policy: %s', (tlsTermination, unmatchedDestinationPolicy) => {
    const config = { secrets: SECRETS, tlsTermination, unmatchedDestinationPolicy } satisfies Pick<Config, 'secrets' | 'tlsTermination' | 'unmatchedDestinationPolicy'>;
    const constraints = constraintsFor(decryptedHosts(config));
    const policy = compilePolicy(config);
    const leaves = TARGETS.map((t) => routeConnect(t, policy)).flatMap((r) => (r.kind === 'mitm' ? [r.leafName] : []));
    expect(leaves.length).toBeGreaterThan(0);
    expect(uncoveredHosts(constraints, { kind: 'hosts', hosts: leaves })).toEqual([]);
    // Only where an unbound host is decrypted is the CA left unconstrained.
    expect(constraints.kind === 'none').toBe(tlsTermination === 'all' && unmatchedDestinationPolicy === 'forward_unmodified');
  });

  it('lists each binding host once, a wildcard as its pattern, sorted', () => {
    expect(decryptedHosts({ secrets: SECRETS, tlsTermination: 'bound', unmatchedDestinationPolicy: 'forward_unmodified' })).toEqual({
      kind: 'hosts',
      hosts: ['*.wild.test', 'api.a.test', 'api.b.test', 'git.test', 'maps.test', 'plain.a.test'],
    });
  });
});

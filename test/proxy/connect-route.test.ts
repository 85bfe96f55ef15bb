import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/index.js';
import { routeConnect } from '../../src/proxy/connect-route.js';

// proxy/connect-route.ts on its own (issue #17): where each CONNECT goes, for each policy, without a socket.
const snap = (top = ''): CompiledPolicy => {
  const config = parseConfig(`version: 1
allow_wildcard_hosts: true
${top}
backend: { type: env }
secrets:
  K:
    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ"
    inject: { header: Authorization, format: "Bearer {K}" }
    bindings: [ { host: api.example.com }, { host: "*.svc.example.com" }, { host: alt.example.com, port: 8443 } ]
`, '/cfg/keyswap.yaml');
  return compilePolicy(config);
};

describe('routeConnect', () => {
  it.each([
    ['api.example.com:443', '', { kind: 'mitm', host: 'api.example.com', port: 443, leafName: 'api.example.com' }],
    ['API.Example.com.:443', '', { kind: 'mitm', host: 'api.example.com', port: 443, leafName: 'api.example.com' }],
    ['eu.svc.example.com:443', '', { kind: 'mitm', host: 'eu.svc.example.com', port: 443, leafName: '*.svc.example.com' }],
    ['alt.example.com:8443', '', { kind: 'mitm', host: 'alt.example.com', port: 8443, leafName: 'alt.example.com' }],
    ['alt.example.com:443', '', { kind: 'tunnel', host: 'alt.example.com', port: 443 }],
    ['other.example.org:443', '', { kind: 'tunnel', host: 'other.example.org', port: 443 }],
    ['other.example.org:443', 'unmatched_destination_policy: deny', { kind: 'deny', host: 'other.example.org', port: 443 }],
    ['other.example.org:443', 'tls_termination: all', { kind: 'mitm', host: 'other.example.org', port: 443, leafName: 'other.example.org' }],
    ['other.example.org:443', 'tls_termination: all\nunmatched_destination_policy: deny', { kind: 'deny', host: 'other.example.org', port: 443 }],
  ])('%s (%s) → %o', (target, top, route) => {
    expect(routeConnect(target, snap(top))).toEqual(route);
  });

  it.each([undefined, 'api.example.com', 'api.example.com:0x1bb', '127.1:443', '[::ffff:127.0.0.1]:443', 'user@api.example.com:443', 'api.example.com:443/x'])('a target that is not host:port (%s) is bad_target', (target) => {
    expect(routeConnect(target, snap())).toEqual({ kind: 'bad_target' });
  });
});

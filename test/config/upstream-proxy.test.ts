import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../src/config/index.js';
import { Dialer } from '../../src/proxy/dialer.js';

const FILE = '/etc/keyswap/keyswap.yaml';
const config = (upstream: string): string => `version: 1
upstream:
${upstream}
secrets:
  K:
    placeholder: "sk-PLACEHOLDER-0123456789abcdef"
    inject: { header: Authorization, format: "Bearer {K}" }
    bindings: [{ host: api.example.com }]
`;
const problems = (upstream: string): string[] => {
  try {
    parseConfig(config(upstream), FILE);
    return [];
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
};

describe('upstream.proxy: the parent proxy', () => {
  it('loads http://host:port with a credentials secret and exceptions', () => {
    const c = parseConfig(config('  proxy: http://Proxy.corp.example:3128\n  proxy_credentials: CORP\n  no_proxy: [internal.example, .corp.example, "*.svc", 10.0.0.0/8, "::1", "[fd00::1]"]'), FILE);
    expect(c.upstream.parent).toEqual({ host: 'proxy.corp.example', port: 3128, credentialsSecret: 'CORP' });
    expect(c.upstream.noProxy.map((r) => r.kind)).toEqual(['domain', 'domain', 'domain', 'cidr', 'ip', 'ip']);
  });

  it.each([
    ['  proxy: http://alice:pw@proxy.corp.example:3128', '3: upstream.proxy: holds credentials; never put them in the URL'],
    ['  proxy: https://proxy.corp.example:3128', "3: upstream.proxy: scheme 'https' is not supported"],
    ['  proxy: http://proxy.corp.example', 'must be exactly http://host:port, with the port written out'],
    ['  proxy: http://proxy.corp.example:3128/path', 'must be exactly http://host:port'],
    ['  proxy: proxy.corp.example:3128', "scheme 'proxy.corp.example' is not supported"],
    ['  proxy: "::"', "is not a URL"],
    ['  proxy_credentials: CORP', 'upstream.proxy_credentials: names credentials for a parent proxy, but upstream.proxy is not set'],
    ['  no_proxy: [a.example]', 'upstream.no_proxy: lists exceptions to a parent proxy, but upstream.proxy is not set'],
    ['  proxy: http://p.example:3128\n  no_proxy: ["bad host!"]', "upstream.no_proxy[0]: 'bad host!' is not a host name, .domain, IP address, CIDR range or *"],
    ['  proxy: http://p.example:3128\n  no_proxy: [10.0.0.0/33]', "'10.0.0.0/33' is not a host name"],
  ])('%s is refused, naming the line and field', (upstream, message) => {
    const found = problems(upstream);
    expect(found.join('\n')).toContain(message);
    expect(found.join('\n')).toContain(FILE);
  });
});

describe('no_proxy reads as curl reads NO_PROXY', () => {
  const dialer = new Dialer(parseConfig(config('  proxy: http://p.example:3128\n  no_proxy: [corp.example, .svc.example, "*.k8s", 10.0.0.0/8, "fd00::/8", 192.0.2.7]'), FILE).upstream, null);
  it.each([
    ['corp.example', false], ['git.corp.example', false], ['Git.Corp.Example.', false], ['evilcorp.example', true], ['corp.example.evil', true],
    ['svc.example', false], ['a.svc.example', false], ['x.k8s', false], ['k8s', false],
    ['10.1.2.3', false], ['11.1.2.3', true], ['fd00::5', false], ['fe80::1', true], ['192.0.2.7', false], ['192.0.2.8', true],
    ['api.openai.com', true],
  ])('%s goes through the parent: %s', (name, viaParent) => {
    expect(dialer.parentFor(name) !== null).toBe(viaParent);
  });
  it('* sends nothing through the parent', () => {
    const all = new Dialer(parseConfig(config('  proxy: http://p.example:3128\n  no_proxy: ["*"]'), FILE).upstream, null);
    expect(all.parentFor('api.openai.com')).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, type RequestFacts, type Verdict } from '../../src/policy/index.js';
import { bearer, binding, facts, PH_A, PH_B, PH_BASIC, PH_Q, POLICY, SECRET_A, secret } from './fixtures.js';

const auth = (v: string): [string, string] => ['authorization', v];
const basic = (user: string, pass: string): [string, string] => ['authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`];

function summary(v: Verdict): string {
  if (v.kind === 'deny') return `deny:${v.reason}`;
  const parts = [...v.injections.map((i) => `inject:${i.secret.name}`), ...v.declined.map((d) => `verbatim:${d.secret.name}:${d.reason}`)];
  return parts.length === 0 ? 'forward:clean' : parts.join(',');
}

describe('decide(): destination check comes first (K3)', () => {
  it.each<[string, Partial<RequestFacts>, string]>([
    ['Host equal to the CONNECT target passes', { headers: [auth(`Bearer ${PH_A}`)] }, 'inject:A'],
    ['Host naming another host is refused', { hostHeader: 'evil.test', headers: [auth(`Bearer ${PH_A}`)] }, 'deny:sni_host_mismatch'],
    ['Host with another port is refused', { hostHeader: 'api.a.test:8443' }, 'deny:sni_host_mismatch'],
    ['Host with the default port explicit passes', { hostHeader: 'api.a.test:443' }, 'forward:clean'],
    ['Host upper-case and trailing dot still names the target', { hostHeader: 'API.A.TEST.' }, 'forward:clean'],
    ['SNI naming another host is refused', { sni: 'evil.test' }, 'deny:sni_host_mismatch'],
    ['a missing SNI for a DNS name is refused', { sni: null }, 'deny:sni_host_mismatch'],
    ['a missing SNI for an IP literal is normal', { connectHost: '127.0.0.1', sni: null, hostHeader: '127.0.0.1' }, 'forward:clean'],
    ['an out-of-range Host port is a bad request', { hostHeader: 'x:99999' }, 'deny:bad_request'],
    ['a missing Host header is a bad request', { hostHeader: undefined }, 'deny:bad_request'],
    ['Host with userinfo is a bad request', { hostHeader: 'user@api.a.test' }, 'deny:bad_request'],
  ])('%s', (_name, over, expected) => {
    expect(summary(decide(facts(over), POLICY))).toBe(expected);
  });
});

describe('decide(): bindings and sites (K2, K4)', () => {
  it.each<[string, Partial<RequestFacts>, string]>([
    ['no placeholder anywhere: forward untouched, nothing to audit', {}, 'forward:clean'],
    ['bound host, method and path: inject', { headers: [auth(`Bearer ${PH_A}`)] }, 'inject:A'],
    ['`**` covers deeper paths', { path: '/v1/files/abc/content', headers: [auth(`Bearer ${PH_A}`)] }, 'inject:A'],
    ['off-scope method travels verbatim', { method: 'DELETE', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['off-scope path travels verbatim', { path: '/v1/admin', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['a trailing slash is another path', { path: '/v1/chat/completions/', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['dot segments never match a glob', { path: '/v1/files/../admin', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['encoded dot segments never match a glob', { path: '/v1/files/%2e%2e/admin', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['encoded slashes never match a glob', { path: '/v1/files/a%2fb', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:binding_scope_violation'],
    ['the query is not part of path matching', { query: 'x=/v1/admin', headers: [auth(`Bearer ${PH_A}`)] }, 'inject:A'],
    ['unbound host travels verbatim', { connectHost: 'other.test', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:destination_not_in_binding'],
    ['a placeholder outside its site travels verbatim', { headers: [['x-other', PH_A]] }, 'verbatim:A:site_violation'],
    ['a placeholder in the path is not its header site', { path: `/v1/files/${PH_A}` }, 'verbatim:A:site_violation'],
    ['a placeholder in the query is not its header site', { query: `k=${PH_A}` }, 'verbatim:A:site_violation'],
    ['secret B bound to GET on host A does not widen A', { method: 'GET', headers: [auth(`Bearer ${PH_A}`), ['x-api-key', PH_B]] }, 'inject:B,verbatim:A:binding_scope_violation'],
    ['two secrets at two sites are both injected', { connectHost: 'api.a.test', method: 'GET', path: '/x', headers: [['x-api-key', `Bearer ${PH_B}`]] }, 'inject:B'],
    ['a credential bound to A is not sent to B even when B has its own secret', { connectHost: 'api.b.test', headers: [auth(`Bearer ${PH_A}`), ['x-api-key', PH_B]] }, 'inject:B,verbatim:A:destination_not_in_binding'],
    ['a binding port other than 443 does not match 443', { connectHost: 'git.test', headers: [basic('x', PH_BASIC)] }, 'verbatim:G:destination_not_in_binding'],
    ['a binding port matches its own port', { connectHost: 'git.test', connectPort: 8443, hostHeader: 'git.test:8443', headers: [basic('x', PH_BASIC)] }, 'inject:G'],
    ['Basic credentials are decoded to find the placeholder', { connectHost: 'git.test', connectPort: 8443, hostHeader: 'git.test:8443', headers: [basic(PH_BASIC, '')] }, 'inject:G'],
    ['query site: the named parameter', { connectHost: 'maps.test', method: 'GET', path: '/v1/geo', query: `key=${PH_Q}` }, 'inject:Q'],
    ['query site: an encoded placeholder is still found', { connectHost: 'maps.test', method: 'GET', path: '/v1/geo', query: `key=${encodeURIComponent(PH_Q)}` }, 'inject:Q'],
    ['query site: another parameter is not the site', { connectHost: 'maps.test', method: 'GET', path: '/v1/geo', query: `other=${PH_Q}` }, 'verbatim:Q:site_violation'],
    ['query site: `*` is exactly one segment', { connectHost: 'maps.test', method: 'GET', path: '/v1/geo/x', query: `key=${PH_Q}` }, 'verbatim:Q:binding_scope_violation'],
    ['wildcard host with an allowed subdomain', { connectHost: 'ok.wild.test', headers: [auth(`Bearer ${PH_A}`)] }, 'inject:A'],
    ['wildcard host with another subdomain', { connectHost: 'evil.wild.test', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:destination_not_in_binding'],
    ['wildcard covers one label only', { connectHost: 'a.ok.wild.test', headers: [auth(`Bearer ${PH_A}`)] }, 'verbatim:A:destination_not_in_binding'],
  ])('%s', (_name, over, expected) => {
    expect(summary(decide(facts(over), POLICY))).toBe(expected);
  });
});

describe('decide(): plain http (K2)', () => {
  const plain = (over: Partial<RequestFacts>): RequestFacts => facts({ scheme: 'http', connectPort: 80, sni: null, ...over });
  it.each<[string, RequestFacts, string]>([
    ['a bound host without allow_plaintext gets the placeholder', plain({ headers: [auth(`Bearer ${PH_A}`)] }), 'verbatim:A:plaintext_not_allowed'],
    ['a binding with allow_plaintext injects', plain({ connectHost: 'plain.a.test', hostHeader: 'plain.a.test', headers: [auth(`Bearer ${PH_A}`)] }), 'inject:A'],
    ['a spoofed Host of a bound host is refused', plain({ connectHost: 'unbound.test', hostHeader: 'plain.a.test', headers: [auth(`Bearer ${PH_A}`)] }), 'deny:sni_host_mismatch'],
  ])('%s', (_name, f, expected) => {
    expect(summary(decide(f, POLICY))).toBe(expected);
  });
});

describe('decide(): ambiguity', () => {
  it('refuses two different placeholders in the site one injection would write', () => {
    const policy = compilePolicy({ secrets: [SECRET_A, { ...SECRET_A, name: 'A2', placeholder: 'sk-PLACEHOLDER-ZZZZZZZZZZZZZZZZZZZZ' }], unmatchedDestinationPolicy: 'forward_unmodified', tlsTermination: 'bound' });
    const v = decide(facts({ headers: [auth(`Bearer ${PH_A} sk-PLACEHOLDER-ZZZZZZZZZZZZZZZZZZZZ`)] }), policy);
    expect(summary(v)).toBe('deny:ambiguous_placeholder');
  });
  it('does not call one placeholder in two headers ambiguous', () => {
    expect(summary(decide(facts({ headers: [auth(`Bearer ${PH_A}`), ['x-trace', PH_A]] }), POLICY))).toBe('inject:A');
  });
});

describe('decide(): a secret with several sites (Anthropic: x-api-key or Authorization: Bearer)', () => {
  const PH_M = 'sk-ant-PLACEHOLDER-MMMMMMMMMMMMMMMMMMMM';
  const M = secret('M', PH_M, [{ type: 'header', header: 'x-api-key', render: { kind: 'format', format: '{M}' } }, bearer('authorization', 'M')], [binding('api.a.test')]);
  const policy = compilePolicy({ secrets: [M, SECRET_A], unmatchedDestinationPolicy: 'forward_unmodified', tlsTermination: 'bound' });
  const sitesOf = (v: Verdict): string[] => (v.kind === 'forward' ? v.injections.flatMap((i) => i.sites.map((s) => (s.type === 'header' ? s.header : s.type))) : [v.reason]);

  it.each<[string, [string, string][], string[]]>([
    ['x-api-key alone: written there', [['x-api-key', PH_M]], ['x-api-key']],
    ['Bearer alone: written there', [auth(`Bearer ${PH_M}`)], ['authorization']],
    ['both sites at once: each is written', [['x-api-key', PH_M], auth(`Bearer ${PH_M}`)], ['x-api-key', 'authorization']],
    ['only outside its sites: verbatim (K4)', [['x-trace', PH_M]], []],
    ['at a site and outside: only the site is written', [['x-api-key', PH_M], ['x-trace', PH_M]], ['x-api-key']],
  ])('%s', (_n, headers, expected) => {
    expect(sitesOf(decide(facts({ headers }), policy))).toEqual(expected);
  });

  it('another secret\'s placeholder in one of its sites is still ambiguous', () => {
    expect(sitesOf(decide(facts({ headers: [auth(`Bearer ${PH_M} ${PH_A}`)] }), policy))).toEqual(['ambiguous_placeholder']);
  });
});

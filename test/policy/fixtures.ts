import type { Binding, InjectSpec, SecretSpec } from '../../src/config/types.js';
import { compilePolicy, type CompiledPolicy, type RequestFacts } from '../../src/policy/index.js';

const source = { file: 'keyswap.yaml', line: 1, field: 'secrets' };

export function binding(host: string, extra: Partial<Binding> = {}): Binding {
  return { host, subdomains: null, methods: null, paths: null, port: null, allowPlaintext: false, rate: null, approve: null, mcp: null, source, ...extra };
}

export function secret(name: string, placeholder: string, inject: InjectSpec | [InjectSpec, ...InjectSpec[]], bindings: Binding[]): SecretSpec {
  return { name, placeholder, sites: Array.isArray(inject) ? inject : [inject], bindings, honeytoken: false, responseScrub: 'redact', backend: null, location: null, source };
}

export const bearer = (header = 'authorization', name = 'A'): InjectSpec => ({ type: 'header', header, render: { kind: 'format', format: `Bearer {${name}}` } });

export const PH_A = 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAA';
export const PH_B = 'sk-PLACEHOLDER-BBBBBBBBBBBBBBBBBBBB';
export const PH_Q = 'q-PLACEHOLDER-QQQQQQQQQQQQQQQQQQQQQ';
export const PH_BASIC = 'git-PLACEHOLDER-CCCCCCCCCCCCCCCCCCC';

export const SECRET_A = secret('A', PH_A, bearer('authorization', 'A'), [
  binding('api.a.test', { methods: ['POST'], paths: ['/v1/chat/completions', '/v1/files/**'] }),
  binding('plain.a.test', { allowPlaintext: true }),
  binding('*.wild.test', { subdomains: ['ok'] }),
]);
export const SECRET_B = secret('B', PH_B, bearer('x-api-key', 'B'), [binding('api.b.test'), binding('api.a.test', { methods: ['GET'] })]);
export const SECRET_Q = secret('Q', PH_Q, { type: 'query', param: 'key', render: { kind: 'format', format: '{Q}' } }, [binding('maps.test', { paths: ['/v1/*'] })]);
export const SECRET_BASIC = secret('G', PH_BASIC, { type: 'basic', username: null, render: { kind: 'format', format: '{G}' } }, [binding('git.test', { port: 8443 })]);

export const POLICY: CompiledPolicy = compilePolicy({
  secrets: [SECRET_A, SECRET_B, SECRET_Q, SECRET_BASIC],
  unmatchedDestinationPolicy: 'forward_unmodified',
  tlsTermination: 'bound',
});

/** An https request to api.a.test:443 with matching SNI and Host unless overridden. */
export function facts(over: Partial<RequestFacts> = {}): RequestFacts {
  const host = over.connectHost ?? 'api.a.test';
  return {
    scheme: 'https',
    connectHost: host,
    connectPort: 443,
    sni: host,
    hostHeader: host,
    method: 'POST',
    path: '/v1/chat/completions',
    query: '',
    headers: [],
    client: null,
    contentType: null,
    ...over,
  };
}

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { lockScript } from '../../src/egress/index.js';
import { REPO } from '../helpers/cli.js';

/*
 * Issue #29, item 2 (the sidecar and the gateway): deploy/kubernetes checked offline, as no cluster runs here. Each overlay is
 * rendered by following its kustomizations' `resources:` (the only kustomize feature the tree uses, which the test
 * enforces) and must equal the plain manifests; every object validates against the Kubernetes API schemas
 * (kubernetes-models); the pod's security contexts are what docs/kubernetes.md promises; keyswap's config in the
 * ConfigMap loads; the egress-lock init container locks the agent container's own UID, to listeners the config has.
 */

const ROOT = path.join(REPO, 'deploy/kubernetes');
type Obj = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };

function render(dir: string): Obj[] {
  const k = parseAllDocuments(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJSON() as Record<string, unknown>;
  expect(Object.keys(k).sort(), `${dir}: only resources: is used, so the plain manifests are what kustomize renders`).toEqual(['apiVersion', 'kind', 'resources']);
  return (k.resources as string[]).flatMap((r) => {
    const p = path.join(dir, r);
    return r.endsWith('.yaml') ? parseAllDocuments(readFileSync(p, 'utf8')).map((d) => d.toJSON() as Obj) : render(p);
  });
}

async function validate(o: Obj): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const mod = (await import(`kubernetes-models/${group === '' ? version : `${group}/${version}`}`)) as Record<string, new (x: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined();
  new (Model as new (x: unknown) => { validate(): void })(o).validate();
}

type Container = { name: string; args?: string[]; restartPolicy?: string; securityContext?: Record<string, unknown>; volumeMounts?: { name: string; readOnly?: boolean }[]; startupProbe?: unknown; livenessProbe?: unknown; env?: { name: string; value: string }[] };

describe('deploy/kubernetes: the sidecar overlay', () => {
  const objects = render(path.join(ROOT, 'overlays/sidecar'));
  const plain = parseAllDocuments(readFileSync(path.join(ROOT, 'plain/sidecar.yaml'), 'utf8')).map((d) => d.toJSON() as Obj);
  const deployment = objects.find((o) => o.kind === 'Deployment') as Obj & { spec: { template: { spec: { initContainers: Container[]; containers: Container[]; volumes: { name: string; secret?: { defaultMode: number } }[]; securityContext: Record<string, unknown>; automountServiceAccountToken: boolean } } } };
  const pod = deployment.spec.template.spec;
  const init = (name: string): Container => pod.initContainers.find((c) => c.name === name) as Container;

  it('renders to the plain manifests, and every object validates against the Kubernetes API schemas', async () => {
    expect(plain).toEqual(objects);
    for (const o of objects) await validate(o);
  });

  it('keyswap is a native sidecar: non-root, read-only root filesystem, no capability, probes on /healthz; the agent never mounts a key', () => {
    const keyswap = init('keyswap');
    expect(keyswap.restartPolicy).toBe('Always');
    expect(pod.initContainers.map((c) => c.name)).toEqual(['egress-lock', 'keyswap-ca', 'keyswap']);
    for (const c of [keyswap, init('keyswap-ca')]) {
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      expect((c.securityContext?.capabilities as { add?: unknown }).add).toBeUndefined();
      expect(c.securityContext?.runAsUser).toBe(10001);
    }
    expect(JSON.stringify(keyswap.startupProbe)).toContain('http://keyswap.invalid/healthz');
    expect(JSON.stringify(keyswap.livenessProbe)).toContain('http://keyswap.invalid/healthz');
    expect(keyswap.volumeMounts?.find((m) => m.name === 'keyswap-secrets')?.readOnly).toBe(true);
    expect(pod.volumes.find((v) => v.name === 'keyswap-secrets')?.secret?.defaultMode).toBe(0o400);
    expect(pod.volumes.find((v) => v.name === 'keyswap-ca')?.secret?.defaultMode).toBe(0o400);
    const agent = pod.containers.find((c) => c.name === 'agent') as Container;
    expect(agent.volumeMounts?.map((m) => m.name)).toEqual(['keyswap-trust']);
    expect(agent.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('the egress-lock init container locks the agent container\'s UID with NET_ADMIN alone, to the listeners keyswap\'s config has; the config loads and holds only placeholders', () => {
    const lock = init('egress-lock');
    expect(lock.securityContext).toMatchObject({ runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } });
    const agent = pod.containers.find((c) => c.name === 'agent') as Container;
    const uid = lock.args?.[(lock.args?.indexOf('--uid') ?? -2) + 1];
    expect(Number(uid)).toBe(agent.securityContext?.runAsUser);
    expect(Number(uid)).not.toBe(init('keyswap').securityContext?.runAsUser);
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as Obj & { data: Record<string, string> };
    const config = parseConfig(configMap.data['keyswap.yaml'] as string, '/etc/keyswap/keyswap.yaml');
    expect(config.transparent?.listen).toEqual({ host: '127.0.0.1', port: 14324 });
    // The transparent listener serves the agent's UID only: the same one the lock redirects.
    expect(config.transparent?.uid).toBe(Number(uid));
    expect(config.unmatchedDestinationPolicy).toBe('deny');
    // The rules the init container writes (the namespace test runs the same code against a real kernel).
    const script = lockScript({ uid: Number(uid), listeners: [config.listen, config.transparent?.listen as { host: string; port: number }], dns: null, transparentPort: 14324, transparentHttpPort: config.transparent?.listenHttp?.port ?? null });
    expect(script).toContain(`ip daddr 127.0.0.1 tcp dport 14322 accept`);
    expect(script).toContain('tcp dport 443 redirect to :14324');
    expect(script).toContain('tcp dport 80 redirect to :14325');
    expect(script).toContain('ip6 daddr ::1 tcp dport 14324 accept');
    // The agent's environment names only placeholders, each one the config's.
    const values = (agent.env ?? []).map((e) => e.value);
    for (const s of config.secrets) expect(values).toContain(s.placeholder);
    expect(values.filter((v) => /^(sk-|ghp_)/.test(v)).every((v) => v.includes('PLACEHOLDER'))).toBe(true);
  });
});

type Pod = { serviceAccountName?: string; automountServiceAccountToken?: boolean; initContainers?: Container[]; containers: Container[]; volumes: { name: string; secret?: { secretName: string; defaultMode: number } }[] };
type Workload = Obj & { spec: { replicas: number; template: { spec: Pod } } };
type Policy = Obj & { spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes: string[]; egress?: { to?: unknown[]; ports?: { port: number }[] }[]; ingress?: { from?: unknown[]; ports?: { port: number }[] }[] } };

describe('deploy/kubernetes: the gateway overlay', () => {
  const objects = render(path.join(ROOT, 'overlays/gateway'));
  const plain = parseAllDocuments(readFileSync(path.join(ROOT, 'plain/gateway.yaml'), 'utf8')).map((d) => d.toJSON() as Obj);
  const named = <T extends Obj>(kind: string, name: string): T => objects.find((o) => o.kind === kind && o.metadata.name === name) as T;
  const gateway = named<Workload>('Deployment', 'keyswap-gateway');
  const pod = gateway.spec.template.spec;
  const keyswap = pod.containers.find((c) => c.name === 'keyswap') as Container & { ports: { name: string; containerPort: number }[] };
  const configMap = named<Obj & { data: Record<string, string> }>('ConfigMap', 'keyswap-gateway-config');
  const config = parseConfig(configMap.data['keyswap.yaml'] as string, '/etc/keyswap/keyswap.yaml');

  it('renders to the plain manifests, and every object validates against the Kubernetes API schemas', async () => {
    expect(plain).toEqual(objects);
    for (const o of objects) await validate(o);
  });

  it('several replicas share state through Redis over TLS, the CA and the audit key, and serve TLS with client identities', () => {
    expect(gateway.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(config.sharedState).toMatchObject({ redis: { host: 'keyswap-redis', port: 6380, tls: { caFile: '/etc/keyswap-redis-tls/ca.crt' } }, onUnavailable: 'refuse', replicas: gateway.spec.replicas });
    expect(config.listenTls?.listen.port).toBe(keyswap.ports.find((p) => p.name === 'proxy-tls')?.containerPort);
    expect(config.clients?.size).toBeGreaterThan(0);
    expect(keyswap.args).toContain('--allow-non-loopback');
    // Every replica signs its chain with one key (a Secret) and names it by its pod.
    expect(config.audit.keyFile.startsWith('/etc/keyswap-audit/')).toBe(true);
    expect(pod.volumes.find((v) => v.name === 'keyswap-audit-key')?.secret?.secretName).toBe('keyswap-audit-key');
    expect(JSON.stringify(keyswap.env)).toContain('KEYSWAP_CHAIN_NAME');
    // Redis's password is the very secret keyswap reads (password_secret), from the same Secret.
    const redis = named<Workload>('StatefulSet', 'keyswap-redis').spec.template.spec.containers[0] as Container & { env: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[]; args: string[] };
    expect(redis.env[0]?.valueFrom.secretKeyRef).toEqual({ name: 'keyswap-secrets', key: config.sharedState?.redis.passwordSecret });
    expect(redis.args.slice(redis.args.indexOf('--port'), redis.args.indexOf('--port') + 2)).toEqual(['--port', '0']);
    expect(redis.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const service = named<Obj & { spec: { ports: { port: number; targetPort: string }[] } }>('Service', 'keyswap-gateway');
    expect(service.spec.ports).toEqual([{ name: 'proxy-tls', port: config.listenTls?.listen.port, targetPort: 'proxy-tls', protocol: 'TCP' }]);
  });

  it('keyswap runs non-root, read-only, with no capability and no API token; probes on /healthz', () => {
    for (const c of [keyswap, ...(pod.initContainers ?? [])]) expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsUser: 10001 });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe('keyswap');
    expect(named<Obj & { automountServiceAccountToken: boolean }>('ServiceAccount', 'keyswap').automountServiceAccountToken).toBe(false);
    expect(JSON.stringify(keyswap.startupProbe)).toContain('http://keyswap.invalid/healthz');
    for (const v of pod.volumes.filter((x) => x.secret !== undefined)) expect(v.secret?.defaultMode).toBe(0o400);
  });

  it('agent pods may reach only the gateway\'s TLS port and DNS; Redis takes the gateway alone', () => {
    const agents = named<Policy>('NetworkPolicy', 'agents-egress-to-gateway-only');
    expect(agents.spec.policyTypes).toEqual(['Egress']);
    expect(agents.spec.egress).toHaveLength(2);
    expect(agents.spec.egress?.[0]?.to).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'keyswap-gateway' } } }]);
    expect(agents.spec.egress?.[0]?.ports?.map((p) => p.port)).toEqual([config.listenTls?.listen.port]);
    expect(agents.spec.egress?.[1]?.ports?.map((p) => p.port)).toEqual([53, 53]);
    const redis = named<Policy>('NetworkPolicy', 'keyswap-redis');
    expect(redis.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'keyswap-gateway' } } }], ports: [{ port: 6380, protocol: 'TCP' }] }]);
    expect(redis.spec.egress).toEqual([]);
    const gw = named<Policy>('NetworkPolicy', 'keyswap-gateway');
    expect(gw.spec.ingress?.[0]?.ports?.map((p) => p.port)).toEqual([config.listenTls?.listen.port]);
  });
});

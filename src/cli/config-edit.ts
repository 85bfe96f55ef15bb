import { isMap, isSeq, type Document } from 'yaml';

interface HeaderSite { readonly header: string; readonly format: string }

/** A secret as `init --from-env`, `mcp install` and `oauth login --mcp` add it to keyswap.yaml. */
export interface NewSecret {
  readonly name: string;
  readonly placeholder: string;
  /** Header sites (`{NAME}` in a format is the secret), or an `inject:` mapping as written (a minted credential). */
  readonly sites: readonly HeaderSite[] | Readonly<Record<string, unknown>>;
  readonly bindings: readonly { readonly host: string; readonly port?: number; readonly methods: readonly string[] | null; readonly paths: readonly string[] | null }[];
  readonly route: { readonly name: string; readonly origin: string } | null;
}

/** The secret, its bindings and its route, added to the config document (comments and order kept). */
export function addSecret(doc: Document, s: NewSecret): void {
  const sites = Array.isArray(s.sites) ? (s.sites as readonly HeaderSite[]).map((site) => ({ header: site.header, format: site.format.replace('{NAME}', `{${s.name}}`) })) : s.sites;
  const inject = doc.createNode(Array.isArray(sites) && sites.length === 1 ? sites[0] : sites);
  // One site stays a flow map on one line; a list is a block list of flow maps, one site per line.
  if (isMap(inject)) inject.flow = true;
  if (isSeq(inject)) for (const item of inject.items) if (isMap(item)) item.flow = true;
  const bindings = doc.createNode(s.bindings.map((b) => ({ host: b.host, ...(b.port === undefined ? {} : { port: b.port }), ...(b.methods === null ? {} : { methods: [...b.methods] }), ...(b.paths === null ? {} : { paths: [...b.paths] }) })));
  for (const item of bindings.items) if (isMap(item)) item.flow = true;
  const secret = doc.createNode({ placeholder: s.placeholder });
  secret.add(doc.createPair('inject', inject));
  secret.add(doc.createPair('bindings', bindings));
  if (!isMap(doc.get('secrets'))) doc.set('secrets', doc.createNode({}));
  const secrets = doc.get('secrets');
  if (isMap(secrets)) secrets.flow = false;
  doc.setIn(['secrets', s.name], secret);
  if (s.route !== null && !doc.hasIn(['routes', s.route.name])) {
    if (!isMap(doc.get('routes'))) doc.set('routes', doc.createNode({}));
    doc.setIn(['routes', s.route.name], s.route.origin);
  }
}

/** One more binding for a secret the document already has (an agent's access request, accepted): a flow map, last. */
export function addBinding(doc: Document, secret: string, b: { readonly host: string; readonly port: number | null; readonly methods: readonly string[] | null; readonly paths: readonly string[] | null }): 'added' | 'no_list' | 'shared' {
  const entry = doc.getIn(['secrets', secret], true);
  const bindings = doc.getIn(['secrets', secret, 'bindings'], true);
  if (!isSeq(bindings)) return 'no_list';
  // An anchored list (or secret) may be an alias's too: appending to it would bind other secrets than the one shown.
  if (bindings.anchor !== undefined || (isMap(entry) && entry.anchor !== undefined)) return 'shared';
  const node = doc.createNode({ host: b.host, ...(b.port === null ? {} : { port: b.port }), ...(b.methods === null ? {} : { methods: [...b.methods] }), ...(b.paths === null ? {} : { paths: [...b.paths] }) });
  if (isMap(node)) node.flow = true;
  bindings.add(node);
  return 'added';
}

export { mintServiceFor, tokenTransport } from './mint-transport.js';
export { startProxy, type ProxyDeps, type RunningProxy } from './listener.js';
export { UpstreamClient } from './upstream.js';
export { OUTCOMES, type RefusalCode } from './refusal.js';
export type { Snapshot, SecretSource, AuditSink, OperatorGate, HeldRequest, HoldAnswer, AccessProposal } from './snapshot.js';
export type { LeafSource } from './mitm.js';
export { routeConnect, type ConnectRoute } from './connect-route.js';
export { Dialer, ParentProxyError } from './dialer.js';
export { peerUid, type PeerQuery } from './peer-uid.js';

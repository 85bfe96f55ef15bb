export { MintService, type MintDeps, type TokenExchangeEvent } from './mint-service.js';
export { credentialsIn, type SentValue } from './sent-ledger.js';
export { MintFailed, type MintFailure } from './failure.js';
export { TransportError, type TokenRequest, type TokenResponse, type TokenTransport, type TransportFailure } from './transport.js';
export { signSigV4, sigv4NeedsBody, type AwsCredentials, type SignableRequest } from './sigv4.js';
export { hmacNeedsBody, signHmac } from './hmac-signer.js';
export type { MintSharing, SharedMinted } from './sharing.js';
export type { Minted } from './minted-cache.js';
export { beginLogin, finishLogin, LoginError, loginServer, mcpLoginServer, registerClient, type Login, type LoginServer } from './authorization-code.js';

export { MintService, type MintDeps, type TokenExchangeEvent } from './mint-service.js';
export { MintFailed, type MintFailure } from './failure.js';
export { TransportError, type TokenRequest, type TokenResponse, type TokenTransport, type TransportFailure } from './transport.js';

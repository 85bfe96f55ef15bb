export { parseAuthority, parseListenAddress, formatAuthority, isIpLiteral, isLocalHost, isLoopbackPeer, type Authority } from './authority.js';
export { endToEndPairs, flatten, firstDuplicate, requestFraming, mediaType, setHeader, type Framing, type HeaderPair } from './headers.js';
export { decodeBasic, encodeBasic, type BasicCredentials } from './basic.js';
export { isAmbiguousPath, isMethodToken, isRequestTarget, queryPairs, decodeQueryComponent } from './path.js';
export { NeedleSet, Replacer, replacingStream, type Needle, type ReplacingStreamHooks } from './replacer.js';
export { h2RequestHead } from './h2.js';
export { readJsonRpcBody, strictJson, UnreadableJson, isObject, field, type JsonRpcBody, type JsonRpcMessage } from './jsonrpc.js';
export { sseEvents, eventData, withData } from './sse.js';

/**
 * Loaded into the agent's own Node process by `keyswap run` (NODE_OPTIONS=--require …): Node 20's global fetch
 * ignores HTTPS_PROXY, so without this an agent's fetch() would go straight to the API with a placeholder (it
 * fails closed, but it fails). It installs undici's EnvHttpProxyAgent as the global dispatcher, which Node's
 * built-in fetch shares; it honours HTTPS_PROXY and NO_PROXY, and trusts NODE_EXTRA_CA_CERTS like any TLS
 * client in that process. Never fatal: an agent that cannot load it still runs, and says why.
 */
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const undici = require('undici') as typeof import('undici');
  undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
} catch (err) {
  process.stderr.write(`keyswap: fetch() in this process will not use the proxy: ${(err as Error).message}\n`);
}

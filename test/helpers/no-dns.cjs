// Preloaded into agent processes the tests start (NODE_OPTIONS=--require …): every name lookup fails at once, so a
// client that bypassed the proxy fails in the test instead of sending a DNS query off the machine. Addresses
// (127.0.0.1, the proxy) need no lookup and still connect.
const dns = require('node:dns');
const fail = (hostname) => Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (name lookups are disabled in this test)`), { code: 'ENOTFOUND', hostname });
dns.lookup = (hostname, options, callback) => {
  const cb = typeof options === 'function' ? options : callback;
  process.nextTick(() => cb(fail(hostname)));
};
dns.promises.lookup = async (hostname) => { throw fail(hostname); };

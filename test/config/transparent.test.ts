import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../src/config/index.js';

/* Issue #29, item 1: `transparent:` as written, each mistake named by file, line and field. */
const FILE = '/cfg/keyswap.yaml';
const SECRETS = 'secrets: {}\n';

function load(transparent: string): { errors: string[]; spec: unknown } {
  try {
    return { errors: [], spec: parseConfig(`version: 1\ntransparent: ${transparent}\n${SECRETS}`, FILE).transparent };
  } catch (err) {
    if (err instanceof ConfigErrors) return { errors: err.errors.map((e) => e.message), spec: null };
    throw err;
  }
}

describe('transparent: in the config', () => {
  it('reads the TLS and plain-HTTP listeners and the UID', () => {
    expect(load('{ listen: 127.0.0.1:14324, listen_http: 127.0.0.1:14325, uid: 1001 }').spec).toEqual({ listen: { host: '127.0.0.1', port: 14324 }, listenHttp: { host: '127.0.0.1', port: 14325 }, uid: 1001, client: null });
    expect(load('{ listen: 127.0.0.1:14324, uid: 1001 }').spec).toMatchObject({ listenHttp: null });
  });

  it.each([
    ['listen off loopback', '{ listen: 0.0.0.0:14324, uid: 1001 }', `${FILE}:2: transparent.listen: '0.0.0.0:14324': the egress lock redirects to 127.0.0.1`],
    ['listen on port 0', '{ listen: 127.0.0.1:0, uid: 1001 }', `${FILE}:2: transparent.listen: needs a fixed port`],
    ['listen_http off loopback', '{ listen: 127.0.0.1:14324, listen_http: "[::1]:14325", uid: 1001 }', `${FILE}:2: transparent.listen_http: '[::1]:14325': the egress lock redirects port 80 to a fixed port of 127.0.0.1`],
    ['listen_http on the TLS port', '{ listen: 127.0.0.1:14324, listen_http: 127.0.0.1:14324, uid: 1001 }', `${FILE}:2: transparent.listen_http: must be another port than transparent.listen`],
    ['listen_http not host:port', '{ listen: 127.0.0.1:14324, listen_http: nope, uid: 1001 }', `${FILE}:2: transparent.listen_http: 'nope' is not host:port`],
  ])('%s is refused, naming the field', (_name, text, expected) => {
    const { errors } = load(text);
    expect(errors.some((e) => e.startsWith(expected)), errors.join('\n')).toBe(true);
  });
});

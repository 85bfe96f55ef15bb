import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { prng } from '../helpers/prng.js';

// Bounded: FUZZ_CASES (default 10,000 in CI; `npm run fuzz` runs 100,000), at most 32 connections at once.
const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);

const METHODS = ['GET', 'POST', 'CONNECT', 'PUT', 'G\0T', '', 'DELETE', 'OPTIONS', 'get', 'PRI', 'HEAD', 'X'.repeat(300)];
const TARGETS = [
  'api.example.test:443', 'api.example.test:99999', 'api.example.test', '[::1]:443', '127.0.0.1:0', 'a@b:443', ':443', 'api.example.test:443/x',
  'http://api.example.test/v1/echo', 'http://unbound.example.test/v1/echo', 'http://api.example.test:99999/', 'http://[::1/', 'http://x@api.example.test/',
  '/v1/echo', '*', '', 'http://api.example.test/v1/../../etc', `http://api.example.test/v1/${PLACEHOLDER}`, '%00', 'https://api.example.test/',
];
const HEADERS = [
  'Host: api.example.test', 'Host: x:99999', 'Host:', 'Host: a b', `Authorization: Bearer ${PLACEHOLDER}`, `Authorization: Basic ${Buffer.from(`u:${PLACEHOLDER}`).toString('base64')}`,
  'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked\r\nContent-Length: 3', 'Connection: upgrade', 'Upgrade: websocket', 'Expect: 100-continue', 'X: \x7f\x00', 'Bad Header: x',
  ' Folded: continuation', `X-Long: ${'a'.repeat(20_000)}`, 'Proxy-Authorization: Basic !!!', 'Content-Type: application/json',
];
const BODIES = ['', 'abc', '0\r\n\r\n', 'zz\r\nabc\r\n0\r\n\r\n', '5\r\nabc\r\n', `{"k":"${PLACEHOLDER}"}`, '\r\n\r\n\r\n', 'ffffffffffffffff\r\n'];
const TLS_GARBAGE = ['\x16\x03\x01\x00\x05hello', '\x16\x03\x03\xff\xff', 'GET / HTTP/1.1\r\n\r\n', '\x80\x80\x80\x80', ''];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function requestBytes(r: () => number): string {
  const eol = r() < 0.1 ? '\n' : '\r\n';
  const line = r() < 0.05 ? pick(r, TLS_GARBAGE) : `${pick(r, METHODS)} ${pick(r, TARGETS)} ${r() < 0.9 ? 'HTTP/1.1' : pick(r, ['HTTP/9.9', 'HTTP/1.1x', ''])}`;
  const headers = Array.from({ length: Math.floor(r() * 5) }, () => pick(r, HEADERS));
  let text = `${line}${eol}${headers.join(eol)}${headers.length ? eol : ''}${eol}${pick(r, BODIES)}`;
  if (r() < 0.2) {
    // Truncate or splice: cuts inside framing are where parsers break.
    const at = Math.floor(r() * text.length);
    text = r() < 0.5 ? text.slice(0, at) : `${text.slice(0, at)}${pick(r, ['\0', '\r', '\n\n', ':', '%', ' '])}${text.slice(at)}`;
  }
  return text;
}

/** Sends one case, half-closes, and collects the answer until the socket closes (or the bound passes). */
function runCase(socket: net.Socket | tls.TLSSocket, bytes: string): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve) => {
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closed: false });
    }, 8_000);
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1'); });
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ answer, closed: true });
    });
    socket.end(bytes);
  });
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe(`HTTP fuzzing: ${CASES} malformed requests against a live keyswap`, () => {
  it('no crash, every connection answered or closed, and no secret byte in any answer or log', async () => {
    const r = prng(SEED);
    const answers: string[] = [];
    let hung = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CASES) {
        next++;
        const viaTls = r() < 0.1;
        const bytes = requestBytes(r);
        let socket: net.Socket | tls.TLSSocket;
        if (viaTls) {
          const raw = net.connect(h.proxyPort, '127.0.0.1');
          raw.write('CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n');
          await new Promise<void>((resolve) => raw.once('data', () => resolve()));
          socket = tls.connect({ socket: raw, servername: 'api.example.test', ca: h.caPem });
          await new Promise<void>((resolve) => {
            socket.once('secureConnect', () => resolve());
            socket.once('error', () => resolve());
          });
        } else {
          socket = net.connect(h.proxyPort, '127.0.0.1');
        }
        const { answer, closed } = await runCase(socket, bytes);
        if (!closed) hung++;
        if (answer.includes('real-secret')) answers.push(answer);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(h.child.exitCode).toBeNull();
    expect(hung).toBe(0);
    expect(answers).toEqual([]);
    expect(findCanary(h)).toEqual([]);
  }, 600_000);
});

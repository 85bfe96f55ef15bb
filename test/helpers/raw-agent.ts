import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/**
 * A raw agent: writes arbitrary request bytes through keyswap (inside a CONNECT tunnel it decrypts, or as
 * plain-http absolute-form requests) and parses the answers itself, so nothing between the generator and
 * keyswap normalises duplicates, casing or framing away.
 */

export interface ParsedResponse {
  readonly status: number;
  readonly reason: string;
  /** [lower-case name, value] in order. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body with chunked framing removed (still content-encoded). */
  readonly body: Buffer;
  readonly trailers: string;
  /** The full framing arrived (false: the connection ended mid-message). */
  readonly complete: boolean;
}

export interface AgentResult {
  readonly responses: readonly ParsedResponse[];
  /** Every byte the agent received after the tunnel was set up (decrypted), for the leak scan. */
  readonly raw: Buffer;
  readonly connectAnswer: string;
  readonly timedOut: boolean;
  readonly error: string | null;
}

export function header(r: ParsedResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n === name)?.[1];
}

type Parse = { readonly kind: 'need_more' } | { readonly kind: 'done'; readonly response: ParsedResponse; readonly used: number } | { readonly kind: 'bad'; readonly why: string };

/** One response from `buf` (latin1), for a request with `method`. `ended`: no more bytes will come. */
function parseOne(buf: Buffer, method: string, ended: boolean): Parse {
  const text = buf.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return ended && buf.length > 0 ? { kind: 'bad', why: 'truncated head' } : { kind: 'need_more' };
  const lines = text.slice(0, headEnd).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) return { kind: 'bad', why: `bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}` };
  const status = Number(m[1]);
  const reason = m[2] ?? '';
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'bad', why: `bad header line ${JSON.stringify(line.slice(0, 80))}` };
    headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
  }
  let at = headEnd + 4;
  const mk = (body: Buffer, trailers: string, complete: boolean, used: number): Parse => ({ kind: 'done', response: { status, reason, headers, body, trailers, complete }, used });
  if (status >= 100 && status < 200) return mk(Buffer.alloc(0), '', true, at);
  if (method === 'HEAD' || status === 204 || status === 304) return mk(Buffer.alloc(0), '', true, at);
  const te = headers.filter(([n]) => n === 'transfer-encoding').map(([, v]) => v.toLowerCase()).join(',');
  const cl = headers.find(([n]) => n === 'content-length')?.[1];
  if (te !== '') {
    if (!/(^|,)\s*chunked\s*$/.test(te)) return { kind: 'bad', why: `response transfer-encoding ${te}` };
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return ended ? mk(Buffer.concat(parts), '', false, buf.length) : { kind: 'need_more' };
      const size = parseInt(text.slice(at, lineEnd).split(';')[0] ?? '', 16);
      if (!Number.isFinite(size)) return { kind: 'bad', why: 'bad chunk size' };
      if (size === 0) {
        const end = text.indexOf('\r\n\r\n', lineEnd);
        const bare = text.startsWith('\r\n', lineEnd + 2);
        if (bare) return mk(Buffer.concat(parts), '', true, lineEnd + 4);
        if (end < 0) return ended ? mk(Buffer.concat(parts), '', false, buf.length) : { kind: 'need_more' };
        return mk(Buffer.concat(parts), text.slice(lineEnd + 2, end), true, end + 4);
      }
      if (lineEnd + 2 + size + 2 > buf.length) return ended ? mk(Buffer.concat([...parts, buf.subarray(lineEnd + 2)]), '', false, buf.length) : { kind: 'need_more' };
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (cl !== undefined) {
    const n = Number(cl);
    if (!Number.isInteger(n) || n < 0) return { kind: 'bad', why: `bad content-length ${cl}` };
    if (buf.length - at < n) return ended ? mk(buf.subarray(at), '', false, buf.length) : { kind: 'need_more' };
    return mk(buf.subarray(at, at + n), '', true, at + n);
  }
  // Close-delimited.
  return ended ? mk(buf.subarray(at), '', true, buf.length) : { kind: 'need_more' };
}

export interface AgentPlan {
  readonly proxyPort: number;
  /** null: plain-http absolute-form requests on the proxy port itself. */
  readonly connect: { readonly host: string; readonly port: number; readonly proxyAuth: string; readonly caPem: string } | null;
  /** Request bytes and the method of each (HEAD answers have no body). */
  readonly requests: readonly { readonly bytes: Buffer; readonly method: string }[];
  readonly pipelined: boolean;
  readonly deadlineMs: number;
}

/** Plays one connection; never rejects, every wait bounded by `deadlineMs`. */
export async function playConnection(plan: AgentPlan): Promise<AgentResult> {
  const outer = net.connect({ host: '127.0.0.1', port: plan.proxyPort });
  outer.setNoDelay(true);
  let connectAnswer = '';
  let error: string | null = null;
  const deadline = Date.now() + plan.deadlineMs;
  const timeLeft = (): number => Math.max(1, deadline - Date.now());
  try {
    await new Promise<void>((resolve, reject) => {
      outer.once('connect', resolve);
      outer.once('error', reject);
      setTimeout(() => reject(new Error('connect timeout')), timeLeft()).unref();
    });
    let sock: Duplex = outer;
    if (plan.connect !== null) {
      const c = plan.connect;
      outer.write(`CONNECT ${c.host}:${c.port} HTTP/1.1\r\nHost: ${c.host}:${c.port}\r\nProxy-Authorization: ${c.proxyAuth}\r\n\r\n`);
      connectAnswer = await new Promise<string>((resolve, reject) => {
        let got = '';
        const onData = (b: Buffer): void => {
          got += b.toString('latin1');
          const end = got.indexOf('\r\n\r\n');
          if (end >= 0) {
            outer.off('data', onData);
            if (end + 4 < got.length) reject(new Error('bytes after the CONNECT answer'));
            else resolve(got);
          }
        };
        outer.on('data', onData);
        outer.once('close', () => resolve(got));
        setTimeout(() => reject(new Error('CONNECT answer timeout')), timeLeft()).unref();
      });
      if (!connectAnswer.startsWith('HTTP/1.1 200')) {
        outer.destroy();
        return { responses: [], raw: Buffer.from(connectAnswer, 'latin1'), connectAnswer, timedOut: false, error: 'CONNECT refused' };
      }
      const t = tls.connect({ socket: outer, servername: c.host, ca: c.caPem, ALPNProtocols: ['http/1.1'] });
      await new Promise<void>((resolve, reject) => {
        t.once('secureConnect', resolve);
        t.once('error', reject);
        setTimeout(() => reject(new Error('TLS handshake timeout')), timeLeft()).unref();
      });
      sock = t;
    }
    return await exchange(sock, plan, connectAnswer, timeLeft());
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    outer.destroy();
    return { responses: [], raw: Buffer.alloc(0), connectAnswer, timedOut: false, error };
  }
}

function exchange(sock: Duplex, plan: AgentPlan, connectAnswer: string, ms: number): Promise<AgentResult> {
  return new Promise<AgentResult>((resolve) => {
    const received: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const responses: ParsedResponse[] = [];
    let sentCount = 0;
    let finished = false;
    let ended = false;
    let error: string | null = null;
    const finish = (timedOut: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ responses, raw: Buffer.concat(received), connectAnswer, timedOut, error });
    };
    const timer = setTimeout(() => finish(true), ms);
    const sendNext = (): void => {
      const r = plan.requests[sentCount];
      if (r === undefined) return;
      sentCount++;
      sock.write(r.bytes);
    };
    const drain = (): void => {
      for (;;) {
        const method = plan.requests[responses.length]?.method ?? 'GET';
        const p = parseOne(pending, method, ended);
        if (p.kind === 'need_more') break;
        if (p.kind === 'bad') {
          error = p.why;
          finish(false);
          return;
        }
        pending = pending.subarray(p.used);
        if (p.response.status >= 100 && p.response.status < 200) continue;
        responses.push(p.response);
        if (!p.response.complete) break;
        if (!plan.pipelined) sendNext();
        if (pending.length === 0) break;
      }
      if (responses.length >= plan.requests.length || (ended && pending.length === 0)) finish(false);
    };
    sock.on('data', (b: Buffer) => {
      received.push(b);
      pending = Buffer.concat([pending, b]);
      drain();
    });
    sock.on('end', () => {
      ended = true;
      drain();
      finish(false);
    });
    sock.on('close', () => {
      ended = true;
      if (!finished) drain();
      finish(false);
    });
    sock.on('error', (e: Error) => { error ??= e.message; });
    if (plan.pipelined) for (let i = 0; i < plan.requests.length; i++) sendNext();
    else sendNext();
  });
}

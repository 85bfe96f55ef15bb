import { closeSync, openSync, readSync, statSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { renderEcho, type EchoForm } from './secret-forms.js';

/**
 * A recording upstream: a TLS (or plain TCP) server on 127.0.0.1 that keeps the raw bytes of every connection
 * AND parses them with Node's own HTTP parser, so bytes smuggled past a request's framing show up as an extra
 * request (or a parse error), never silently as body. Each response is chosen by the request itself: the header
 * `x-test-respond` carries a ResponseSpec (base64url JSON), `x-test-id` is echoed back for routing checks.
 */

export interface Echo {
  /** `received`: the first secret value found in this request; otherwise a secret name (a stored echo). */
  readonly secret: string;
  readonly form: EchoForm;
}
export type BodyPart = { readonly text: string } | { readonly echo: Echo };
export const RESPONSE_ENCODINGS = ['identity', 'gzip', 'deflate', 'br', 'zstd', 'gzip, gzip'] as const;
export type ResponseEncoding = (typeof RESPONSE_ENCODINGS)[number];

export interface ResponseSpec {
  readonly status: number;
  readonly reasonEcho: Echo | null;
  readonly headerEchoes: readonly Echo[];
  readonly body: readonly BodyPart[];
  readonly encoding: ResponseEncoding;
  readonly framing: 'content-length' | 'chunked';
  /** Byte offsets at which the (encoded) body is cut into separate writes, each on its own tick. */
  readonly splits: readonly number[];
  readonly trailerEcho: Echo | null;
  /** Answer as soon as the head arrives, before the request body is read. */
  readonly early: boolean;
}

export type Framing = { readonly kind: 'content-length'; readonly length: string } | { readonly kind: 'chunked'; readonly te: string } | { readonly kind: 'none' };

export interface UpstreamRequestRecord {
  /** Global arrival order across all connections of this upstream. */
  readonly seq: number;
  readonly conn: number;
  readonly testId: string | null;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly framing: Framing;
  body: Buffer;
  complete: boolean;
  /** Allowed inject_decision counts (see auditKey) in the audit file the moment the head arrived (K5). */
  readonly auditAtHead: ReadonlyMap<string, number>;
  /** The same, the moment each secret first became whole in the body (body injection streams, K5). */
  readonly auditAtBodySecret: Map<string, ReadonlyMap<string, number>>;
}

export interface UpstreamConnRecord {
  readonly id: number;
  raw: Buffer[];
  readonly parseErrors: string[];
}

export interface RecordingUpstream {
  readonly port: number;
  readonly requests: UpstreamRequestRecord[];
  readonly conns: UpstreamConnRecord[];
  /** Requests whose body has not ended yet. */
  pending(): number;
  close(): Promise<void>;
}

export interface RecordingUpstreamOptions {
  readonly tls: { certPem: string; keyPem: string } | null;
  readonly audit: AuditTail;
  /** Secret name → real value: what `received` echoes search for, and what stored echoes send. */
  readonly secrets: ReadonlyMap<string, string>;
}

export function auditKey(secret: string, method: string, host: string, port: number, client: string | null): string {
  return `${secret}|${method}|${host}|${port}|${client ?? ''}`;
}

/** Reads an append-only JSONL audit file incrementally, counting `allowed` inject_decision records by auditKey. */
export class AuditTail {
  readonly #path: string;
  #offset = 0;
  #partial = '';
  readonly #counts = new Map<string, number>();
  readonly records: Record<string, unknown>[] = [];
  constructor(path: string) { this.#path = path; }

  counts(): ReadonlyMap<string, number> {
    this.#refresh();
    return new Map(this.#counts);
  }

  #refresh(): void {
    let size: number;
    try {
      size = statSync(this.#path).size;
    } catch {
      return; // not created yet
    }
    if (size <= this.#offset) return;
    const buf = Buffer.alloc(size - this.#offset);
    const fd = openSync(this.#path, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.#offset);
    } finally {
      closeSync(fd);
    }
    this.#offset = size;
    const lines = (this.#partial + buf.toString('utf8')).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const r = JSON.parse(line) as Record<string, unknown>;
      this.records.push(r);
      if (r.type !== 'inject_decision' || r.decision !== 'allowed') continue;
      const d = r.destination as { host: string; port: number };
      const key = auditKey(String(r.secret_name), String(r.method), d.host, d.port, typeof r.client === 'string' ? r.client : null);
      this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    }
  }
}

/** A Duplex in front of a real socket that records every byte read, so http.Server parses what we record. */
class Tap extends Duplex {
  readonly #inner: net.Socket;
  constructor(inner: net.Socket, onBytes: (b: Buffer) => void) {
    super();
    this.#inner = inner;
    inner.on('data', (c: Buffer) => {
      onBytes(c);
      if (!this.push(c)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('close', () => this.destroy());
    inner.on('error', () => this.destroy());
  }
  override _read(): void { this.#inner.resume(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void { this.#inner.write(chunk, cb); }
  override _final(cb: (err?: Error | null) => void): void { this.#inner.end(); cb(); }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void { this.#inner.destroy(); cb(err); }
  setTimeout(ms: number, cb?: () => void): this { this.#inner.setTimeout(ms, cb); return this; }
  setNoDelay(v?: boolean): this { this.#inner.setNoDelay(v); return this; }
  setKeepAlive(v?: boolean, d?: number): this { this.#inner.setKeepAlive(v, d); return this; }
}

function framingOf(raw: readonly string[]): Framing {
  let te: string | null = null;
  let cl: string | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = (raw[i] ?? '').toLowerCase();
    if (n === 'transfer-encoding') te = te === null ? (raw[i + 1] ?? '') : `${te}, ${raw[i + 1] ?? ''}`;
    if (n === 'content-length') cl = cl === null ? (raw[i + 1] ?? '') : `${cl}, ${raw[i + 1] ?? ''}`;
  }
  if (te !== null) return { kind: 'chunked', te };
  if (cl !== null) return { kind: 'content-length', length: cl };
  return { kind: 'none' };
}

function encode(body: Buffer, encoding: ResponseEncoding): Buffer {
  switch (encoding) {
    case 'identity': return body;
    case 'gzip': return gzipSync(body);
    case 'deflate': return deflateSync(body);
    case 'br': return brotliCompressSync(body);
    // Node 20 has no zstd encoder: the label is what matters (nobody on the way can decode it), so the body is
    // sent as it is. An agent that trusted the label could not read it either; a proxy must not pass it unread.
    case 'zstd': return body;
    case 'gzip, gzip': return gzipSync(gzipSync(body));
  }
}

export async function startRecordingUpstream(opts: RecordingUpstreamOptions): Promise<RecordingUpstream> {
  const requests: UpstreamRequestRecord[] = [];
  const conns: UpstreamConnRecord[] = [];
  const connOf = new WeakMap<object, UpstreamConnRecord>();
  const sockets = new Set<net.Socket>();
  let seq = 0;
  let pending = 0;

  const firstSecretIn = (text: string): string | null => {
    for (const v of opts.secrets.values()) if (text.includes(v)) return v;
    return null;
  };

  const parser = http.createServer({ requireHostHeader: false, keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0 }, (req, res) => {
    const conn = connOf.get(req.socket) ?? { id: -1, raw: [], parseErrors: [] };
    const testId = typeof req.headers['x-test-id'] === 'string' ? req.headers['x-test-id'] : null;
    const record: UpstreamRequestRecord = {
      seq: seq++, conn: conn.id, testId, method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders],
      framing: framingOf(req.rawHeaders), body: Buffer.alloc(0), complete: false,
      auditAtHead: opts.audit.counts(), auditAtBodySecret: new Map(),
    };
    requests.push(record);
    pending++;
    const chunks: Buffer[] = [];
    let bodyLength = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      bodyLength += c.length;
      if (bodyLength > 1 << 20) return;
      const text = Buffer.concat(chunks).toString('latin1');
      for (const [name, value] of opts.secrets) {
        if (!record.auditAtBodySecret.has(name) && text.includes(Buffer.from(value, 'utf8').toString('latin1'))) record.auditAtBodySecret.set(name, opts.audit.counts());
      }
    });
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      const specText = req.headers['x-test-respond'];
      if (testId === null || typeof specText !== 'string') {
        res.writeHead(400, { 'content-type': 'text/plain', 'content-length': '21' });
        res.end('upstream: no test id\n');
        return;
      }
      const spec = JSON.parse(Buffer.from(specText, 'base64url').toString('utf8')) as ResponseSpec;
      const headText = `${req.url ?? ''}\n${req.rawHeaders.join('\n')}\n${Buffer.from(req.headers.authorization?.slice(6) ?? '', 'base64').toString('latin1')}`;
      const received = firstSecretIn(`${headText}\n${decodeLoose(req.url ?? '')}\n${Buffer.concat(chunks).toString('latin1')}`);
      const echo = (e: Echo): string => {
        const value = e.secret === 'received' ? received : (opts.secrets.get(e.secret) ?? null);
        return value === null ? 'nothing-received' : renderEcho(value, e.form);
      };
      const body = encode(Buffer.from(spec.body.map((p) => ('text' in p ? p.text : echo(p.echo))).join(''), 'utf8'), spec.encoding);
      const headers: string[] = ['x-test-id', testId, 'content-type', 'text/plain'];
      spec.headerEchoes.forEach((e, i) => headers.push(`x-echo-${i}`, `v=${echo(e)};`));
      if (spec.encoding !== 'identity') headers.push('content-encoding', spec.encoding);
      if (spec.framing === 'content-length') headers.push('content-length', String(body.length));
      // Trailers need a chunked body: never on HEAD, 204 or 304, where Node refuses them.
      else if (spec.trailerEcho !== null && req.method !== 'HEAD' && spec.status !== 204 && spec.status !== 304) headers.push('trailer', 'x-trail');
      res.writeHead(spec.status, spec.reasonEcho === null ? undefined : `Echo ${echo(spec.reasonEcho)}`, headers);
      const cuts = [...new Set(spec.splits.map((s) => s % (body.length + 1)))].sort((a, b) => a - b);
      const pieces: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        pieces.push(body.subarray(at, c));
        at = c;
      }
      pieces.push(body.subarray(at));
      const next = (): void => {
        const piece = pieces.shift();
        if (piece === undefined) {
          if (spec.framing === 'chunked' && spec.trailerEcho !== null) res.addTrailers({ 'x-trail': echo(spec.trailerEcho) });
          res.end();
          return;
        }
        if (piece.length > 0) res.write(piece);
        setImmediate(next);
      };
      next();
    };
    // Settled once: by its end, by an abort, or by its connection closing (an early answer already finished takes
    // the request out of Node's abort list, so a cut upload then ends with neither 'end' nor 'aborted').
    let isSettled = false;
    const socket = req.socket;
    const settle = (): void => {
      if (isSettled) return;
      isSettled = true;
      pending--;
      socket.off('close', settle);
    };
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      record.complete = true;
      settle();
      answer();
    });
    req.on('aborted', settle);
    socket.once('close', settle);
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    if (req.headers['x-test-respond'] !== undefined) {
      try {
        const spec = JSON.parse(Buffer.from(String(req.headers['x-test-respond']), 'base64url').toString('utf8')) as ResponseSpec;
        if (spec.early) answer();
      } catch {
        // answered (400) at the end
      }
    }
  });
  parser.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    connOf.get(socket)?.parseErrors.push(err.code ?? err.message);
    socket.destroy();
  });

  const accept = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const conn: UpstreamConnRecord = { id: conns.length, raw: [], parseErrors: [] };
    conns.push(conn);
    const tap = new Tap(socket, (b) => conn.raw.push(b));
    connOf.set(tap, conn);
    parser.emit('connection', tap);
  };
  const server: net.Server = opts.tls
    ? tls.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, accept)
    : net.createServer(accept);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    conns,
    pending: () => pending,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      parser.close();
    },
  };
}

function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

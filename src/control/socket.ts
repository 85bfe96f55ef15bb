import { chmod, lstat, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { handleControl, type ControlDeps } from './api.js';

export const CONTROL_SOCKET = 'control.sock';

/** sun_path holds 108 bytes with its terminating NUL (Linux). */
const MAX_SOCKET_PATH = 107;

export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, CONTROL_SOCKET);
}

export interface ControlSocket { readonly path: string; close(): Promise<void> }

/**
 * The control API on `state_dir/control.sock` (0600, in a directory only keyswap's user may enter): whoever can
 * open it is an operator (actor `cli`). A socket left by a keyswap that died is replaced; one another keyswap
 * still answers on is not.
 */
export async function startControlSocket(stateDir: string, deps: ControlDeps): Promise<ControlSocket> {
  const file = controlSocketPath(stateDir);
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) throw new Error(`${file} is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes): give state_dir a shorter path`);
  if (await isAnswering(file)) throw new Error(`another keyswap answers on ${file}: one keyswap per state_dir`);
  const existing = await lstat(file).catch(() => null);
  if (existing !== null) {
    if (!existing.isSocket()) throw new Error(`${file} exists and is not a socket; move it away`);
    await unlink(file);
  }
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000 }, (req, res) => {
    // handleControl answers every error itself; this is the net under it: keyswap never stops for a control call.
    handleControl(req, res, req.url ?? '/', 'cli', deps).catch(() => { if (!res.headersSent) res.writeHead(500).end(); else res.destroy(); });
  });
  // A session's request stays open as long as its command runs.
  server.keepAliveTimeout = 5_000;
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  await chmod(file, 0o600);
  return {
    path: file,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      void unlink(file).catch(() => {});
    }),
  };
}

function isAnswering(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class ControlUnavailable extends Error {
  override readonly name = 'ControlUnavailable';
}

/** One call to the control API of the keyswap serving `stateDir`: its status and JSON answer. */
export async function callControl(stateDir: string, method: string, route: string, body?: unknown): Promise<{ readonly status: number; readonly body: Record<string, unknown> }> {
  const res = await openControl(stateDir, method, route, body);
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { error: text.trim() };
  }
  return { status: res.statusCode ?? 0, body: parsed };
}

/** A call whose answer streams (a session, the event stream): the response, for the caller to read and close. */
export function openControl(stateDir: string, method: string, route: string, body?: unknown): Promise<http.IncomingMessage> {
  const socketPath = controlSocketPath(stateDir);
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: route, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } }, resolve);
    req.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? new ControlUnavailable(`no keyswap is serving ${path.dirname(socketPath)} (no answer on ${socketPath}); start it with: keyswap serve`)
        : err.code === 'EACCES' ? new ControlUnavailable(`${socketPath}: permission denied; run this as keyswap's user (sudo -u keyswap keyswap …) or root`) : err);
    });
    req.end(text);
  });
}

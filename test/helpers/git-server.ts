import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface GitServer {
  readonly port: number;
  /** Basic credentials the server saw, decoded, one per authenticated request. */
  readonly credentials: string[];
  close(): Promise<void>;
}

const git = (args: string[], cwd: string): void => {
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.test', '-c', 'init.defaultBranch=main', ...args], { cwd, stdio: 'ignore' });
};

/**
 * A real git smart-HTTP server over HTTPS: git's own http-backend (CGI) behind a Node https server that asks for
 * Basic credentials (401 + WWW-Authenticate, as GitHub does) and accepts only `x-access-token:<token>`.
 * Serves one repository, /repo.git, holding a README with `readme` as its text.
 */
export async function startGitServer(opts: { tls: { certPem: string; keyPem: string }; token: string; readme: string }): Promise<GitServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'keyswap-git-'));
  const work = path.join(root, 'work');
  git(['init', '-q', work], root);
  execFileSync('sh', ['-c', 'printf "%s" "$1" > README', 'sh', opts.readme], { cwd: work });
  git(['add', 'README'], work);
  git(['commit', '-q', '-m', 'first'], work);
  git(['clone', '-q', '--bare', work, path.join(root, 'repo.git')], root);

  const credentials: string[] = [];
  const expected = `x-access-token:${opts.token}`;
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : null;
    if (given !== null) credentials.push(given);
    if (given !== expected) {
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test git"', 'content-type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'https://x');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'x-access-token',
        REMOTE_ADDR: '127.0.0.1',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headDone = true;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    credentials,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

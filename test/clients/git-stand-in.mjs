// A GitHub stand-in for git over smart HTTP: git's own http-backend behind HTTPS, asking for Basic credentials
// (401 + WWW-Authenticate, as GitHub does) and accepting only x-access-token:<real token>. Plain .mjs because the
// client matrix runs it inside a network namespace with plain node; the TypeScript tests import this same file.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';

const git = (args, cwd) =>
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.test', '-c', 'init.defaultBranch=main', ...args], { cwd, stdio: 'ignore' });

/**
 * Serves one repository, /<repoPath>, holding a README with `readme` as its text.
 * @param {{ tls: { certPem: string, keyPem: string }, key: { real: string, placeholder: string }, repoPath: string, readme: string }} opts
 */
export async function startGitStandIn(opts) {
  const root = mkdtempSync(path.join(tmpdir(), 'keyswap-matrix-git-'));
  const work = path.join(root, 'work');
  git(['init', '-q', work], root);
  execFileSync('sh', ['-c', 'printf "%s" "$1" > README', 'sh', opts.readme], { cwd: work });
  git(['add', 'README'], work);
  git(['commit', '-q', '-m', 'first'], work);
  git(['clone', '-q', '--bare', work, path.join(root, opts.repoPath)], root);

  const requests = [];
  const credentials = [];
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    const auth = String(req.headers.authorization ?? '');
    const basic = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : null;
    const password = basic === null ? '' : basic.slice(basic.indexOf(':') + 1);
    const kind = basic === null ? 'none' : password === opts.key.real ? 'real' : password === opts.key.placeholder ? 'placeholder' : 'other';
    if (basic !== null) credentials.push(basic);
    const record = { api: 'git', method: req.method, path: req.url, host: req.headers.host, via: basic === null ? 'none' : 'basic', key: kind, status: 0, at: Date.now() };
    requests.push(record);
    res.on('finish', () => { record.status = res.statusCode; });
    if (basic !== `x-access-token:${opts.key.real}`) {
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"', 'content-type': 'text/plain' });
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
    cgi.stdout.on('data', (chunk) => {
      if (headDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headDone = true;
      const headers = {};
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
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    requests,
    credentials,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

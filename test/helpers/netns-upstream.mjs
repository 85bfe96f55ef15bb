// An HTTPS server for the egress tests, started inside the "internet" network namespace with
// `ip netns exec NS node netns-upstream.mjs HOST PORT CERT KEY LOG`: it answers 200 to every request and appends
// {url, authorization} of each to LOG, so the test sees what reached "the internet". IPv6 hosts are accepted.
// A sixth argument is a port for plain HTTP as well, on the same host.
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const [host, port, cert, key, log, plainPort] = process.argv.slice(2);
const answer = (req, res) => {
  appendFileSync(log, `${JSON.stringify({ url: req.url, authorization: req.headers.authorization ?? null })}\n`);
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('reached the internet\n');
};
const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, answer);
const plain = plainPort === undefined ? null : http.createServer(answer).listen(Number(plainPort), host);
server.listen(Number(port), host, () => process.stdout.write(`listening ${host}:${port}\n`));
process.on('SIGTERM', () => { plain?.close(); server.close(() => process.exit(0)); });

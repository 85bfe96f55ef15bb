import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { TestCa } from './test-ca.js';

/*
 * A webhook receiver as an operator would write one: HTTPS on 127.0.0.1, every delivery verified with the
 * `standardwebhooks` package (signature over id.timestamp.body, timestamp within its tolerance), duplicates of an id
 * answered 200 and dropped. `down` answers 503 without reading anything.
 */
export interface Received { readonly id: string; readonly type: string; readonly data: Record<string, unknown>; readonly raw: string; readonly headers: Record<string, string> }

export interface WebhookReceiver {
  readonly port: number;
  readonly secret: string;
  readonly received: Received[];
  readonly rejected: string[];
  /** Deliveries attempted per id (including duplicates and the ones answered 503). */
  readonly attempts: Map<string, number>;
  down: boolean;
  close(): Promise<void>;
}

export async function startWebhookReceiver(ca: TestCa, secret: string): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret);
  const tls = ca.issue(['hooks.example.test']);
  const r: WebhookReceiver = {
    port: 0, secret, received: [], rejected: [], attempts: new Map(), down: false,
    close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
  };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const id = String(req.headers['webhook-id'] ?? '');
      r.attempts.set(id, (r.attempts.get(id) ?? 0) + 1);
      if (r.down) {
        res.writeHead(503).end();
        return;
      }
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      try {
        const payload = verifier.verify(body, headers) as { type: string; data: Record<string, unknown> };
        if (!r.received.some((x) => x.id === id)) r.received.push({ id, type: payload.type, data: payload.data, raw: body, headers });
        res.writeHead(204).end();
      } catch (err) {
        r.rejected.push(`${id}: ${(err as Error).message}`);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  (r as { port: number }).port = (server.address() as AddressInfo).port;
  return r;
}

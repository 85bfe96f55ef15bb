import type http from 'node:http';
import { z } from 'zod';
import { accountOf } from '../config/index.js';
import { PLACEHOLDER_MARKER } from '../policy/index.js';
import { admit, type ProxyContext } from './entries.js';
import { HEALTH_HOST } from './health-entry.js';
import { Refusal } from './refusal.js';

/*
 * `POST http://keyswap.invalid/v1/access-requests`: an agent asks for a binding it does not have (the MCP tool
 * keyswap_request_access sends it). It comes through the proxy like any request, so it is authenticated as the
 * agent's client and names who asked; it can only ask, for a secret that client already holds. What it asks is
 * kept for an operator (control/), who accepts it with `keyswap approve ID` (the CLI writes the binding and
 * reloads) or declines it.
 */

export const ACCESS_PATH = '/v1/access-requests';
const MAX_BODY = 16 * 1024;

const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/;
const askBody = z.strictObject({
  secret: z.string().min(1).max(128),
  host: z.string().regex(DNS_NAME, 'a lower-case DNS name (no scheme, port, path or wildcard)'),
  port: z.number().int().min(1).max(65_535).optional(),
  methods: z.array(z.string().regex(/^[A-Z]{1,16}$/, 'an upper-case HTTP method')).min(1).max(16).optional(),
  // Printable ASCII URL path characters only: a glob is shown to operators as it is (keyswap approvals, the
  // console, alerts), so a backspace, an escape sequence or a bidi override in it would show one glob and write another.
  paths: z.array(z.string().max(512).regex(/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/, 'a path glob starting with /: URL path characters (A-Z a-z 0-9 - . _ ~ ! $ & \' ( ) * + , ; = : @ % /), without query or fragment')
    .refine((g) => g.split('/').every((s) => !s.includes('*') || s === '*' || s === '**'), "'*' and '**' must be whole segments")
    // Paths are audited and shown: a placeholder never is.
    .refine((g) => !g.includes(PLACEHOLDER_MARKER), 'a path glob holding a placeholder')).min(1).max(16).optional(),
  reason: z.string().min(1).max(500),
});

export function handleAccessRequest(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
  const ex = admit(ctx, req, { kind: 'response', res }, { scheme: 'http', host: HEALTH_HOST, port: 80, sni: null, isRoute: false }, path);
  if (ex === null) return;
  void (async () => {
    if (req.method !== 'POST' || path !== ACCESS_PATH) throw new Refusal('bad_request', { answer: answer(405, { error: `ask with POST http://${HEALTH_HOST}${ACCESS_PATH}` }) });
    const asked = askBody.safeParse(await readJson(req));
    if (!asked.success) throw new Refusal('bad_request', { answer: answer(400, { error: asked.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') }) });
    const a = asked.data;
    const client = ex.target?.client ?? null;
    const secret = ex.snap.config.secrets.find((s) => s.name === a.secret || s.placeholder === a.secret);
    // Only a secret the agent may already use: asking to widen one, never to be handed another.
    if (secret === undefined || (client !== null && !client.secrets.has(secret.name))) {
      throw new Refusal('bad_request', { answer: answer(404, { error: 'no secret of that name or placeholder that this agent holds; ask for one of its own (keyswap_status lists them)' }) });
    }
    const proposed = await ex.snap.operator.proposeAccess({
      client: client?.name ?? null, account: accountOf(client), secretName: secret.name, host: a.host, port: a.port ?? null,
      methods: a.methods ?? null, paths: a.paths ?? null, reason: a.reason,
    });
    if (proposed.kind === 'full') throw new Refusal('approval_queue_full', { answer: answer(429, { error: 'too many access requests are waiting for an operator; ask again later' }) });
    const body = JSON.stringify({ id: proposed.id, status: 'pending', secret: secret.name, host: a.host, message: `asked; an operator sees it in keyswap approvals (and the console) and accepts it with keyswap approve ${proposed.id}, or declines it` });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
    res.end(body);
  })().catch((err: unknown) => ex.refuse(err));
}

function answer(status: number, body: unknown): { status: number; contentType: string; body: string } {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Refusal('bad_request', { answer: answer(413, { error: `at most ${MAX_BODY} bytes` }) });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new Refusal('bad_request', { answer: answer(400, { error: 'the body is not JSON' }) });
  }
}

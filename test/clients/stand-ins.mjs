// Stand-ins for api.openai.com and api.anthropic.com: just enough of each API for its SDKs and for a hand-written
// client, answering 200 only to the real key. They echo the key they received, so every response is a chance for
// keyswap's scrubbing to fail where the agent can see it.
import https from 'node:https';

const STREAM_CHUNKS = 6;
// ~300 ms in all: long enough that a client which buffers the whole stream is told apart from one that does not.
const STREAM_GAP_MS = 60;

/**
 * Classifies the credential a request carried, without keeping it: the records end up in the results file.
 * @param {import('node:http').IncomingMessage} req
 * @param {{ real: string, placeholder: string }} key
 */
function credential(req, key) {
  const bearer = /^Bearer (.*)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
  const apiKey = req.headers['x-api-key'];
  const [via, value] = apiKey !== undefined ? ['x-api-key', String(apiKey)] : bearer !== undefined ? ['bearer', bearer] : ['none', ''];
  const kind = value === key.real ? 'real' : value === key.placeholder ? 'placeholder' : value === '' ? 'none' : 'other';
  return { via, kind, value };
}

function readJson(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString() || '{}'));
      } catch {
        resolve({});
      }
    });
  });
}

/** Writes `events` as server-sent events, STREAM_GAP_MS apart; records when the last one left. */
function streamEvents(res, events, record) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  const next = () => {
    const e = events[i++];
    if (e === undefined) {
      record.lastChunkWrittenAt = Date.now();
      res.end();
      return;
    }
    res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`);
    if (i === 1) record.firstChunkWrittenAt = Date.now();
    setTimeout(next, STREAM_GAP_MS);
  };
  next();
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function openai(req, res, cred, record) {
  const url = new URL(req.url ?? '/', 'https://api.openai.com');
  if (cred.kind !== 'real') {
    // As the real API does, the refusal names the key it was given.
    return json(res, 401, { error: { message: `Incorrect API key provided: ${cred.value}`, type: 'invalid_request_error', code: 'invalid_api_key' } });
  }
  if (req.method === 'GET' && url.pathname === '/v1/models') {
    return json(res, 200, { object: 'list', data: [{ id: 'test-model', object: 'model', created: 0, owned_by: 'stand-in' }], received_key: cred.value });
  }
  if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
    const body = await readJson(req);
    const base = { id: 'chatcmpl-standin', created: 0, model: 'test-model', received_key: cred.value };
    if (body.stream !== true) {
      return json(res, 200, { ...base, object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `key=${cred.value}` } }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    }
    const words = [`key=${cred.value}`, ...Array.from({ length: STREAM_CHUNKS - 1 }, (_, n) => ` word${n}`)];
    const events = words.map((w) => ({ data: { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: w }, finish_reason: null }] } }));
    events.push({ data: '[DONE]' });
    return streamEvents(res, events, record);
  }
  json(res, 404, { error: { message: 'not found' } });
}

async function anthropic(req, res, cred, record) {
  const url = new URL(req.url ?? '/', 'https://api.anthropic.com');
  if (cred.kind !== 'real') {
    return json(res, 401, { type: 'error', error: { type: 'authentication_error', message: `invalid API key: ${cred.value}` } });
  }
  if (req.method !== 'POST' || url.pathname !== '/v1/messages') return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
  const body = await readJson(req);
  const message = { id: 'msg_standin', type: 'message', role: 'assistant', model: body.model ?? 'test-model', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } };
  if (body.stream !== true) {
    return json(res, 200, { ...message, content: [{ type: 'text', text: `key=${cred.value}` }], stop_reason: 'end_turn' });
  }
  const texts = [`key=${cred.value}`, ...Array.from({ length: STREAM_CHUNKS - 1 }, (_, n) => ` word${n}`)];
  const events = [
    { event: 'message_start', data: { type: 'message_start', message: { ...message, content: [], stop_reason: null } } },
    { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
    ...texts.map((text) => ({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } } })),
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: texts.length } } },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ];
  streamEvents(res, events, record);
}

/**
 * Starts one HTTPS server per API on 127.0.0.1.
 * @param {{ tls: Record<'openai'|'anthropic', { certPem: string, keyPem: string }>, keys: Record<'openai'|'anthropic', { real: string, placeholder: string }> }} opts
 */
export async function startApiStandIns(opts) {
  /** Every request, in arrival order: which API, what was asked, and what kind of key arrived where. */
  const requests = [];
  const servers = {};
  for (const [name, handle] of /** @type {const} */ ([['openai', openai], ['anthropic', anthropic]])) {
    const server = https.createServer({ cert: opts.tls[name].certPem, key: opts.tls[name].keyPem }, (req, res) => {
      const cred = credential(req, opts.keys[name]);
      const record = { api: name, method: req.method, path: req.url, host: req.headers.host, via: cred.via, key: cred.kind, status: 0, at: Date.now(), firstChunkWrittenAt: null, lastChunkWrittenAt: null };
      requests.push(record);
      res.on('finish', () => { record.status = res.statusCode; });
      handle(req, res, cred, record).catch((err) => {
        if (!res.headersSent) json(res, 500, { error: { message: String(err) } });
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers[name] = server;
  }
  return {
    ports: { openai: servers.openai.address().port, anthropic: servers.anthropic.address().port },
    requests,
    async close() {
      for (const s of Object.values(servers)) {
        s.closeAllConnections();
        await new Promise((resolve) => s.close(resolve));
      }
    },
  };
}

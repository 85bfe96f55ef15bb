import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ALERT_EVENTS, mailOf, signedHeaders, type AlertEvent } from '../alerts/index.js';
import { loadConfig, type Config } from '../config/index.js';
import { tokenTransport, UpstreamClient } from '../proxy/index.js';
import { openBackends } from '../secrets/index.js';
import { backendSource, type Check } from './doctor-parent.js';
import { CliError, EXIT } from './exit-codes.js';
import { mailSender } from './mail-sender.js';
import type { CliIo } from './io.js';

export const ALERTS_USAGE = `usage: keyswap alerts test [--event EVENT] [--config FILE]

Sends one signed sample alert (Standard Webhooks headers, data.sample: true) to every webhook that receives EVENT
(default: violation), through keyswap's upstream client as real alerts go, and prints what each answered.
Events: ${ALERT_EVENTS.join(', ')}. Exit 1 when a webhook did not answer 2xx.`;

export async function alertsCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, event: { type: 'string', default: 'violation' } }, allowPositionals: true, strict: true });
  if (positionals[0] !== 'test' || positionals.length > 1) throw new CliError(`expected: keyswap alerts test\n${ALERTS_USAGE}`, EXIT.usage);
  if (!(ALERT_EVENTS as readonly string[]).includes(values.event)) throw new CliError(`--event ${values.event} is not an alert event (${ALERT_EVENTS.join(', ')})`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const results = await sendSamples(config, io, values.event as AlertEvent);
  if (results.length === 0) io.stdout.write(`no webhook in ${config.file} receives ${values.event}\n`);
  for (const r of results) io.stdout.write(`${r.ok ? 'ok' : '!!'} ${r.what}\n`);
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.runtime;
}

/** One signed sample to each webhook that receives `event` (null: each webhook's first event; doctor's check). */
export async function sendSamples(config: Config, io: CliIo, only: AlertEvent | null): Promise<Check[]> {
  const hooks = config.alerts.webhooks.filter((w) => only === null || w.events.has(only));
  const email = config.alerts.email !== null && (only === null || config.alerts.email.events.has(only)) ? config.alerts.email : null;
  if (hooks.length === 0 && email === null) return [];
  const backend = await openBackends(config, { ...io.env }, () => {});
  const proxySecrets = config.upstream.parent?.credentialsSecret ? backendSource(config, io) : null;
  const upstream = new UpstreamClient(config.upstream, config.upstream.extraCaFile === null ? null : await readFile(config.upstream.extraCaFile, 'utf8'), proxySecrets);
  const transport = tokenTransport(upstream);
  const out: Check[] = [];
  try {
    for (const hook of hooks) {
      const url = new URL(hook.url);
      const event = only ?? ([...hook.events][0] as AlertEvent);
      const body = JSON.stringify({ type: event, timestamp: new Date().toISOString(), data: { sample: true, reason: 'keyswap alerts test' } });
      try {
        const key = (await backend.fetch(hook.signingSecret, { signal: AbortSignal.timeout(5000) })).reveal();
        const r = await transport.send(url, { method: 'POST', headers: signedHeaders(key, `msg_${randomUUID()}`, body, new Date()), body });
        out.push(r.status >= 200 && r.status < 300 ? { ok: true, what: `webhook ${url.host} accepted a signed ${event} sample (HTTP ${r.status})` } : { ok: false, what: `webhook ${url.host} answered a signed ${event} sample with HTTP ${r.status}`, fix: 'check that the receiver verifies with the same signing secret (Standard Webhooks)' });
      } catch (err) {
        out.push({ ok: false, what: `webhook ${url.host} cannot be reached or signed for: ${(err as Error).message}`, fix: `check alerts.webhooks url and that ${hook.signingSecret} is in the backend` });
      }
    }
    if (email !== null) {
      const mail = mailSender(email, config.upstream, (n) => backend.fetch(n, { signal: AbortSignal.timeout(5000) }));
      const at = `${email.host}:${email.port}`;
      try {
        if (only === null) {
          // doctor: connect, TLS, authenticate; no mail.
          await mail.verify();
          out.push({ ok: true, what: `mail server ${at} accepts keyswap over verified TLS with its credentials` });
        } else {
          const { subject, text } = mailOf(JSON.stringify({ type: only, timestamp: new Date().toISOString(), data: { sample: true, reason: 'keyswap alerts test' } }));
          await mail(subject, text);
          out.push({ ok: true, what: `mail server ${at} accepted a ${only} sample for ${email.to.join(', ')}` });
        }
      } catch (err) {
        out.push({ ok: false, what: `mail server ${at}: ${(err as Error).message.split('\n')[0]}`, fix: 'check alerts.email.smtp (host, port, ca_file) and the credentials in the backend' });
      }
    }
  } finally {
    upstream.close();
    await backend.close();
    await proxySecrets?.close();
  }
  return out;
}

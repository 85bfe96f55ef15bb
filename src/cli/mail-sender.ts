import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { Config, EmailSpec } from '../config/index.js';
import type { Secret } from '../secret.js';

/**
 * Mail for alerts through nodemailer (loaded only when `alerts.email` is set): TLS always (STARTTLS required, or
 * port 465), the server's certificate verified for `smtp.host` (against `ca_file` or the system roots), the address
 * dialled taken from `upstream.resolve` like every other host keyswap reaches, credentials from the backend at each
 * send. Rejects with the server's answer.
 */
export interface MailSender {
  (subject: string, text: string): Promise<void>;
  /** Connects, upgrades to TLS and authenticates, sending nothing (doctor). */
  verify(): Promise<void>;
}

type Transport = { sendMail(m: object): Promise<unknown>; verify(): Promise<unknown> };

export function mailSender(email: EmailSpec, upstream: Config['upstream'], secret: (name: string) => Promise<Secret>): MailSender {
  const open = async (): Promise<Transport> => {
    const nodemailer = await import('nodemailer');
    const ca = email.caFile === null ? undefined : await readFile(email.caFile, 'utf8');
    const dial = upstream.resolve.get(`${email.host}:${email.port}`) ?? { host: email.host, port: email.port };
    return nodemailer.createTransport({
      host: dial.host,
      port: dial.port,
      secure: email.port === 465,
      requireTLS: email.port !== 465,
      tls: { ...(isIP(email.host) === 0 ? { servername: email.host } : {}), rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(ca === undefined ? {} : { ca }) },
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
      ...(email.usernameSecret !== null && email.passwordSecret !== null ? { auth: { user: (await secret(email.usernameSecret)).reveal(), pass: (await secret(email.passwordSecret)).reveal() } } : {}),
    }) as Transport;
  };
  // A fresh transport per message: credentials rotated in the backend are read at the next one.
  const send = (async (subject: string, text: string) => {
    const t = await open();
    await t.sendMail({ from: email.from, to: email.to.join(', '), subject, text });
  }) as MailSender;
  send.verify = async () => { await (await open()).verify(); };
  return send;
}

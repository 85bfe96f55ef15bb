import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #27, item 2 (email): alerts by mail through nodemailer to a local SMTP server (smtp-server) that requires
 * STARTTLS and authentication. The server's certificate is verified for the configured name; credentials come from
 * the backend; no secret or placeholder is in any message.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HONEY = 'sk-PLACEHOLDER-MAILHONEYMAILHONEY0001';

interface Mail { readonly from: string; readonly to: string[]; readonly raw: string; readonly user: string | undefined }

async function smtp(ca: TestCa): Promise<{ port: number; mails: Mail[]; close(): Promise<void> }> {
  const tls = ca.issue(['mail.example.test']);
  const mails: Mail[] = [];
  const server = new SMTPServer({
    key: tls.keyPem,
    cert: tls.certPem,
    authOptional: false,
    allowInsecureAuth: false,
    onAuth(auth, _session, cb) {
      cb(auth.username === 'alerts@example.test' && auth.password === 'smtp-password-never-logged' ? null : new Error('Invalid username or password'), { user: auth.username });
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => { raw += c.toString(); });
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw, user: session.user as string | undefined });
        cb();
      });
    },
    logger: false,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.server.address() as AddressInfo).port, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('alerts by email', () => {
  it('a honeytoken alert arrives by mail over verified STARTTLS with the backend\'s credentials; nothing secret in it', async () => {
    const ca = createTestCa();
    const server = await smtp(ca);
    const w = tempWorld('mail');
    const h = await startHarness({
      testCa: ca,
      resolve: { [`mail.example.test:${server.port}`]: `127.0.0.1:${server.port}` },
      secretValues: { HONEY: 'honey-mail-value', SMTP_USER: 'alerts@example.test', SMTP_PASS: 'smtp-password-never-logged' },
      top: `alerts:
  email:
    smtp: { host: mail.example.test, port: ${server.port}, username_secret: SMTP_USER, password_secret: SMTP_PASS, ca_file: ${w.write('ca.pem', ca.certPem)} }
    from: keyswap@example.test
    to: [oncall@example.test]
    events: [honeytoken]`,
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  HONEY:
    placeholder: "${HONEY}"
    honeytoken: true
    inject: { header: X-Honey, format: "{HONEY}" }
    bindings: [ { host: api.example.test } ]
`,
    });
    try {
      await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`X-Honey: ${HONEY}`] });
      for (let i = 0; i < 100 && server.mails.length === 0; i++) await sleep(100);
      expect(server.mails).toHaveLength(1);
      const mail = server.mails[0] as Mail;
      expect(mail.user).toBe('alerts@example.test');
      expect(mail.to).toEqual(['oncall@example.test']);
      expect(mail.raw).toMatch(/Subject: keyswap alert: honeytoken \(HONEY\)/);
      expect(mail.raw).toContain('secret: HONEY');
      for (const forbidden of [HONEY, 'honey-mail-value', h.canary, PLACEHOLDER, 'smtp-password-never-logged']) expect(mail.raw).not.toContain(forbidden);
      await sleep(300);
      expect(h.auditRecords().some((r) => r.type === 'alert_delivery' && r.sink === `mail.example.test:${server.port}` && r.outcome === 'delivered')).toBe(true);
      for (const text of [h.stdout(), h.stderr(), h.auditText()]) expect(text).not.toContain('smtp-password-never-logged');

      const env = { KEYSWAP_SECRET_SMTP_USER: 'alerts@example.test', KEYSWAP_SECRET_SMTP_PASS: 'smtp-password-never-logged', KEYSWAP_SECRET_TEST_API_KEY: 'x', KEYSWAP_SECRET_HONEY: 'y' };
      const test = await cliCollect(['alerts', 'test', '--event', 'honeytoken', '--config', `${h.dir}/keyswap.yaml`], { env });
      expect(test.stdout, test.stderr).toContain(`ok mail server mail.example.test:${server.port} accepted a honeytoken sample for oncall@example.test`);
      expect(server.mails).toHaveLength(2);
      const doctor = await cliCollect(['doctor', '--config', `${h.dir}/keyswap.yaml`], { env });
      expect(doctor.stdout).toContain(`ok mail server mail.example.test:${server.port} accepts keyswap over verified TLS with its credentials`);
      expect(server.mails).toHaveLength(2);
      expect(test.stdout + test.stderr + doctor.stdout + doctor.stderr).not.toContain('smtp-password-never-logged');
    } finally {
      await h.close();
      await server.close();
    }
  });

  it('a server whose certificate another CA signed gets nothing: the attempt fails verification and is retried', async () => {
    const server = await smtp(createTestCa('an impostor CA'));
    const ca = createTestCa();
    const w = tempWorld('mail-bad');
    const h = await startHarness({
      testCa: ca,
      resolve: { [`mail.example.test:${server.port}`]: `127.0.0.1:${server.port}` },
      secretValues: { HONEY: 'honey-mail-value', SMTP_USER: 'alerts@example.test', SMTP_PASS: 'smtp-password-never-logged' },
      top: `alerts:
  email:
    smtp: { host: mail.example.test, port: ${server.port}, username_secret: SMTP_USER, password_secret: SMTP_PASS, ca_file: ${w.write('ca.pem', ca.certPem)} }
    from: keyswap@example.test
    to: [oncall@example.test]`,
      secrets: `
  HONEY:
    placeholder: "${HONEY}"
    honeytoken: true
    inject: { header: X-Honey, format: "{HONEY}" }
    bindings: [ { host: api.example.test } ]
`,
    });
    try {
      await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`X-Honey: ${HONEY}`] });
      for (let i = 0; i < 50 && !h.auditRecords().some((r) => r.type === 'alert_delivery'); i++) await sleep(100);
      expect(h.auditRecords().find((r) => r.type === 'alert_delivery')).toMatchObject({ outcome: 'retrying' });
      expect(server.mails).toEqual([]);
    } finally {
      await h.close();
      await server.close();
    }
  });
});

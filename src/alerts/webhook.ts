import { Webhook } from 'standardwebhooks';

/** One webhook as the config gives it. */
export interface WebhookSink {
  readonly url: string;
  /** The backend secret holding the signing key (`whsec_…`, base64). */
  readonly signingSecret: string;
  readonly events: ReadonlySet<string>;
}

/** Posts one request and resolves with the status (rejects when nothing answered). keyswap's upstream client. */
export type Post = (url: URL, headers: Record<string, string>, body: string) => Promise<number>;

/**
 * The Standard Webhooks headers for one attempt: `webhook-id` (the same on every retry, so receivers drop
 * duplicates), `webhook-timestamp` (this attempt), `webhook-signature` (`v1,` + base64 HMAC-SHA256 over
 * `id.timestamp.body`, made by the standardwebhooks library with the signing secret).
 */
export function signedHeaders(signingKey: string, id: string, body: string, at: Date): Record<string, string> {
  const signature = new Webhook(signingKey.startsWith('whsec_') ? signingKey : Buffer.from(signingKey).toString('base64')).sign(id, at, body);
  return { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
}

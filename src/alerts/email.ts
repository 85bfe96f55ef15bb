import type { AlertData } from './events.js';

/** `alerts.email`, as the alerter needs it: where, from whom, to whom, which events. */
export interface EmailSink {
  /** The queue's name for this sink: `smtp://host:port`. */
  readonly id: string;
  readonly events: ReadonlySet<string>;
}

/** Sends one message; rejects with what the server (or the connection) said. */
export type SendMail = (subject: string, text: string) => Promise<void>;

/** An alert as mail: a subject naming the event, and a body an operator can act on without the JSON. */
export function mailOf(body: string): { readonly subject: string; readonly text: string } {
  const alert = JSON.parse(body) as { type: string; timestamp: string; data: AlertData };
  const d = alert.data;
  const lines = [
    `keyswap raised ${alert.type} at ${alert.timestamp}.`,
    '',
    ...(d.quota !== undefined ? [`quota: ${d.quota} (${d.used ?? '?'}/${d.limit ?? '?'} per ${d.period ?? '?'})`] : []),
    ...(d.secret_name !== undefined ? [`secret: ${d.secret_name}`] : []),
    ...(d.client !== undefined ? [`client: ${d.client ?? '(none)'}`] : []),
    ...(d.destination !== undefined ? [`destination: ${d.destination.method} ${d.destination.host}:${d.destination.port}${d.destination.path}`] : []),
    ...(d.credential !== undefined ? [`credential: ${d.credential}, expires ${d.expires ?? '?'}`] : []),
    ...(d.reason !== undefined ? [`reason: ${d.reason}`] : []),
    ...(d.count !== undefined ? [`${d.count} more of this kind since the last message`] : []),
    ...(d.request_id !== undefined ? [`audit: request_id ${d.request_id} in keyswap's audit log`] : []),
    '',
    'The same alert, as JSON:',
    body,
  ];
  return { subject: `keyswap alert: ${alert.type}${d.quota ? ` (${d.quota})` : d.secret_name ? ` (${d.secret_name})` : ''}`, text: `${lines.join('\n')}\n` };
}

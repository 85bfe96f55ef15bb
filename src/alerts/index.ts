export { Alerter, type AlerterDeps } from './alerter.js';
export { ALERT_EVENTS, alertOf, type AlertData, type AlertEvent } from './events.js';
export { AlertQueue, ALERT_QUEUE_FILE } from './queue.js';
export { expiringCredentials } from './expiring.js';
export { mailOf, type EmailSink, type SendMail } from './email.js';
export { signedHeaders, type Post, type WebhookSink } from './webhook.js';

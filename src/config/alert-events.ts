/** The alert events a sink may subscribe to (a public contract, like audit event names; alerts/events.ts says what raises each). */
export const ALERT_EVENTS = ['usage_warning', 'usage_exhausted', 'honeytoken', 'violation', 'token_exchange_failed', 'audit_failed', 'backend_failed', 'credential_expiring', 'approval_requested', 'lockdown', 'access_requested'] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

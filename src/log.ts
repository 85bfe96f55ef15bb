import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines on stderr. keyswap never passes a secret, placeholder, header value or
 * query string to it; the redact list is a second net for fields that must never be printed even if a
 * future caller passes a whole object.
 */
export function createLogger(level: string = 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['secret', 'value', 'token', 'placeholder', 'headers', 'authorization', '*.authorization', 'query', 'body'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

import type { HostPort } from './types.js';

/** host:port, [v6]:port; `allowZero` for listen (port 0 = pick a free port, used by tests). */
export function parseHostPort(text: string, allowZero: boolean): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZero)) return null;
  return { host: (m[1] ?? m[2] ?? '').toLowerCase(), port };
}

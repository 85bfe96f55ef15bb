/**
 * Options every Google client keyswap makes is given: the HTTP/JSON transport (no gRPC stack), and an https
 * endpoint in place of Google's when the config names one (a regional or private endpoint, a test server).
 */
export function googleClientOptions(endpoint: string | null): { fallback: true; apiEndpoint?: string; port?: number; protocol?: string } {
  const url = endpoint === null ? null : new URL(endpoint);
  return url === null ? { fallback: true } : { fallback: true, apiEndpoint: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), protocol: 'https' };
}

/** gRPC status codes, and the HTTP statuses Google's JSON transport answers with, by the status name both mean. */
const GRPC: Record<number, string> = { 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 13: 'INTERNAL', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED' };
const HTTP: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

/**
 * What a Google client's error says: its status name (`NOT_FOUND`, `PERMISSION_DENIED`…) and Google's message. The
 * HTTP/JSON transport puts the whole `{"error":{code,message,status}}` body in the message; gRPC puts a code.
 * Google's messages name resources, never payloads.
 */
export function googleStatus(err: unknown): { readonly status: string; readonly message: string } {
  const e = err as { code?: unknown; message?: unknown; details?: unknown };
  const text = typeof e.message === 'string' ? e.message : '';
  try {
    const body = JSON.parse(text.slice(text.indexOf('{'))) as { error?: { status?: unknown; message?: unknown } };
    if (typeof body.error?.status === 'string') return { status: body.error.status, message: short(String(body.error.message ?? '')) };
  } catch {
    // not the JSON transport's error body
  }
  const code = typeof e.code === 'number' ? e.code : null;
  const status = code === null ? (typeof e.code === 'string' ? e.code : (err as Error).name ?? 'Error') : (code >= 100 ? HTTP[code] : GRPC[code]) ?? `status ${code}`;
  return { status, message: short(typeof e.details === 'string' ? e.details : text.split('\n')[0] ?? '') };
}

function short(s: string): string {
  const line = s.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

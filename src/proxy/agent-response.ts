import type { ServerResponse } from 'node:http';
import http2, { Http2ServerResponse } from 'node:http2';

/** The agent's side of one request: an HTTP/1.1 response on its connection, or one HTTP/2 stream's. */
export type AgentResponse = ServerResponse | Http2ServerResponse;

export function isHttp2(res: AgentResponse): res is Http2ServerResponse {
  return res instanceof Http2ServerResponse;
}

/**
 * What the response body is written to. For HTTP/2 that is the stream itself: the compatibility response emits
 * 'finish' even when its stream was reset, so only the stream can tell a broken transfer from a complete one.
 */
export function agentSink(res: AgentResponse): NodeJS.WritableStream {
  return isHttp2(res) ? res.stream : res;
}

/** The agent's side is gone (closed connection, reset stream): nothing more can reach it. */
export function isGone(res: AgentResponse): boolean {
  return isHttp2(res) ? res.stream.destroyed : res.destroyed;
}

/**
 * A broken transfer, never a clean end: HTTP/1.1 cuts the connection; HTTP/2 resets this stream only, since its
 * siblings on the connection are other requests.
 */
export function breakResponse(res: AgentResponse): void {
  if (!isHttp2(res)) {
    res.socket?.destroy();
    return;
  }
  if (!res.stream.destroyed) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
}

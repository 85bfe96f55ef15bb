"""mitmproxy addon for the benchmark: swap a placeholder in Authorization for the real value, the same
header injection keyswap performs, so both proxies do comparable work per request.

The swap runs in `requestheaders`, which mitmproxy calls as soon as a request's head is read: with
stream_large_bodies set, `request` would only run after a streamed body had already been sent upstream."""
import os

PLACEHOLDER = os.environ["BENCH_PLACEHOLDER"]
REAL = os.environ["BENCH_SECRET"]


def requestheaders(flow):
    value = flow.request.headers.get("authorization")
    if value and PLACEHOLDER in value:
        flow.request.headers["authorization"] = value.replace(PLACEHOLDER, REAL)

"""mitmproxy addon for the benchmark: swap a placeholder in Authorization for the real value, the same
header injection keyswap performs, so both proxies do comparable work per request."""
import os

PLACEHOLDER = os.environ["BENCH_PLACEHOLDER"]
REAL = os.environ["BENCH_SECRET"]


def request(flow):
    value = flow.request.headers.get("authorization")
    if value and PLACEHOLDER in value:
        flow.request.headers["authorization"] = value.replace(PLACEHOLDER, REAL)

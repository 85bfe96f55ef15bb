"""The one line every Python client prints: what it got, for the matrix to judge (same fields in every language)."""
import json
import re
import sys
import time

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def echo_of(text):
    """The key text the stand-in echoed back, after keyswap's scrubbing."""
    m = re.search(r'key=([^\s"]*)', text) or re.search(r'"received_key":\s*"([^"]*)"', text)
    return m.group(1) if m else None


def report(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def now_ms():
    return int(time.time() * 1000)


class StreamClock:
    """Counts streamed pieces and notes when the first arrived (epoch ms, compared with when the server wrote the last)."""

    def __init__(self):
        self.started = now_ms()
        self.chunks = 0
        self.first_at = None

    def chunk(self):
        self.chunks += 1
        if self.first_at is None:
            self.first_at = now_ms()

    def fields(self):
        ttfc = None if self.first_at is None else self.first_at - self.started
        return {"chunks": self.chunks, "first_chunk_at": self.first_at, "ttfc_ms": ttfc, "end_at": now_ms()}

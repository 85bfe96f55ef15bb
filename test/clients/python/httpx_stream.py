import os

import httpx
from report import CHAT, StreamClock, echo_of, report

clock = StreamClock()
text = ""
with httpx.stream(
    "POST",
    "https://api.openai.com/v1/chat/completions",
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
    json={**CHAT, "stream": True},
) as r:
    for line in r.iter_lines():
        if line.startswith("data: "):
            clock.chunk()
            text += line
    status = r.status_code
report(status=status, echo=echo_of(text), **clock.fields())

import os

import requests
from report import CHAT, StreamClock, echo_of, report

clock = StreamClock()
r = requests.post(
    "https://api.openai.com/v1/chat/completions",
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
    json={**CHAT, "stream": True},
    stream=True,
    timeout=30,
)
text = ""
for line in r.iter_lines(decode_unicode=True):
    if line and line.startswith("data: "):
        clock.chunk()
        text += line
report(status=r.status_code, echo=echo_of(text), **clock.fields())

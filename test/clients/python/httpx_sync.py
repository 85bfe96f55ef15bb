import os

import httpx
from report import CHAT, echo_of, report

r = httpx.post(
    "https://api.openai.com/v1/chat/completions",
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
    json=CHAT,
)
report(status=r.status_code, echo=echo_of(r.text))

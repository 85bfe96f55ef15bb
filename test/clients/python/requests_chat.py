import os

import requests
from report import CHAT, echo_of, report

r = requests.post(
    "https://api.openai.com/v1/chat/completions",
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
    json=CHAT,
    timeout=30,
)
report(status=r.status_code, echo=echo_of(r.text))

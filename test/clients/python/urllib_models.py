import os
import urllib.error
import urllib.request

from report import echo_of, report

req = urllib.request.Request(
    "https://api.openai.com/v1/models",
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        report(status=r.status, echo=echo_of(r.read().decode()))
except urllib.error.HTTPError as e:
    report(status=e.code, echo=echo_of(e.read().decode()))

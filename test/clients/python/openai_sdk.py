from openai import OpenAI
from report import echo_of, report

client = OpenAI()
completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
report(status=200, echo=echo_of(completion.choices[0].message.content or ""))

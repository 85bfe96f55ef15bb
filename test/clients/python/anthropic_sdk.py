import anthropic
from report import echo_of, report

client = anthropic.Anthropic()
message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
report(status=200, echo=echo_of("".join(b.text for b in message.content if b.type == "text")))

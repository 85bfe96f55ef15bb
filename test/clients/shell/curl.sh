#!/bin/sh
# curl as a user types it: the proxy and the CA come from keyswap run's environment.
set -eu
out=$(curl -sS -w '\n%{http_code}' https://api.openai.com/v1/chat/completions \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H 'Content-Type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
status=$(printf '%s\n' "$out" | tail -n 1)
echo=$(printf '%s\n' "$out" | sed -n 's/.*key=\([^"[:space:]]*\).*/\1/p' | head -n 1)
printf '{"status":%s,"echo":"%s"}\n' "$status" "$echo"

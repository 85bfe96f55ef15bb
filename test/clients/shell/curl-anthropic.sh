#!/bin/sh
set -eu
out=$(curl -sS -w '\n%{http_code}' https://api.anthropic.com/v1/messages \
  -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
  -d '{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}')
status=$(printf '%s\n' "$out" | tail -n 1)
echo=$(printf '%s\n' "$out" | sed -n 's/.*key=\([^"[:space:]]*\).*/\1/p' | head -n 1)
printf '{"status":%s,"echo":"%s"}\n' "$status" "$echo"

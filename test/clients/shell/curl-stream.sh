#!/bin/bash
# -N turns off curl's output buffering; each event is stamped as it arrives (epoch ms) to tell a stream from a dump.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s%3N)
curl -sSN -D "$tmp/head" https://api.openai.com/v1/chat/completions \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H 'Content-Type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}' |
  while IFS= read -r line; do
    case $line in "data: "*) printf '%s %s\n' "$(date +%s%3N)" "$line" ;; esac
  done >"$tmp/events"
status=$(grep -o '^HTTP/[0-9.]* [0-9]*' "$tmp/head" | tail -n 1 | cut -d' ' -f2)
chunks=$(wc -l <"$tmp/events")
first=$(head -n 1 "$tmp/events" | cut -d' ' -f1)
echo=$(sed -n 's/.*key=\([^"[:space:]]*\).*/\1/p' "$tmp/events" | head -n 1)
printf '{"status":%s,"echo":"%s","chunks":%s,"first_chunk_at":%s,"ttfc_ms":%s,"end_at":%s}\n' \
  "$status" "$echo" "$chunks" "${first:-null}" "$(( ${first:-$start} - start ))" "$(date +%s%3N)"

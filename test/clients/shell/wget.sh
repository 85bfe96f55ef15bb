#!/bin/sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -S prints the status line (wget exits 6 or 8 on a 401, so the status, not the exit code, tells what happened).
wget -nv -S --content-on-error -O "$tmp/body" --header="Authorization: Bearer $OPENAI_API_KEY" \
  https://api.openai.com/v1/models 2>"$tmp/log" || true
status=$(grep -o 'HTTP/[0-9.]* [0-9]*' "$tmp/log" | tail -n 1 | cut -d' ' -f2)
[ -n "$status" ] || { cat "$tmp/log" >&2; exit 1; }
echo=$(sed -n 's/.*"received_key":"\([^"]*\)".*/\1/p' "$tmp/body" | head -n 1)
printf '{"status":%s,"echo":"%s"}\n' "$status" "$echo"

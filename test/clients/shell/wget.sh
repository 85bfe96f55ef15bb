#!/bin/sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# wget exits 6 or 8 on a 401; the status line still tells what happened.
wget -q -S --content-on-error -O "$tmp/body" --header="Authorization: Bearer $OPENAI_API_KEY" \
  https://api.openai.com/v1/models 2>"$tmp/head" || true
status=$(grep -o 'HTTP/[0-9.]* [0-9]*' "$tmp/head" | tail -n 1 | cut -d' ' -f2)
echo=$(sed -n 's/.*"received_key":"\([^"]*\)".*/\1/p' "$tmp/body" | head -n 1)
[ -n "$status" ] || { cat "$tmp/head" >&2; exit 1; }
printf '{"status":%s,"echo":"%s"}\n' "$status" "$echo"

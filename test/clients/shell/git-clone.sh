#!/bin/sh
set -eu
export GIT_TERMINAL_PROMPT=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "https://x-access-token:${GITHUB_TOKEN}@github.com/keyswap-test/repo.git" "$tmp/repo"
# The clone keeps its remote URL: it must hold the placeholder, never the token keyswap injected.
if grep -qF "$GITHUB_TOKEN" "$tmp/repo/.git/config"; then kept=true; else kept=false; fi
printf '{"status":200,"readme":"%s","config_holds_placeholder":%s}\n' "$(cat "$tmp/repo/README")" "$kept"

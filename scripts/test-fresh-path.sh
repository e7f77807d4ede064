#!/usr/bin/env bash
# Runs the README's test command (`bash scripts/test.sh`) with the instruction-count gate's tools —
# valgrind (and its callgrind helpers) and gungraun-runner — hidden from PATH, as on a fresh machine that
# has only rustup and what scripts/setup.sh installs. CI runs the tests this way, so a test that silently
# needs a hand-installed tool fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
hidden='^(valgrind.*|callgrind.*|cg_.*|vgdb|gungraun-runner)$'
shadow="$(mktemp -d)"
trap 'rm -rf "$shadow"' EXIT
IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for exe in "$dir"/*; do
    name="$(basename "$exe")"
    [[ "$name" =~ $hidden ]] && continue
    [ -x "$exe" ] && [ ! -e "$shadow/$name" ] && ln -s "$exe" "$shadow/$name"
  done
done
for tool in valgrind gungraun-runner; do
  if PATH="$shadow" command -v "$tool" >/dev/null 2>&1; then
    echo "test-fresh-path: $tool is still on the shadow PATH" >&2
    exit 2
  fi
done
echo "== tests with valgrind and gungraun-runner hidden from PATH"
PATH="$shadow" bash scripts/test.sh "$@"

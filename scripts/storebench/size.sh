#!/usr/bin/env bash
# Prints the bytes each candidate store adds to a stripped static Go
# binary that opens it, writes and reads once, against a baseline that
# only prints. Run from scripts/storebench.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in base tsdb bbolt sqlite; do
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/$p" "./size/$p"
done
base=$(stat -c %s "$out/base")
printf '%-8s %12s %12s\n' store bytes added
for p in tsdb bbolt sqlite; do
	s=$(stat -c %s "$out/$p")
	printf '%-8s %12d %12s\n' "$p" "$s" "+$(((s - base) / 1024)) KiB"
done

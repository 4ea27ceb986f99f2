#!/usr/bin/env bash
# Runs the benchmarks and prints each figure next to its limit. Benchmarks
# report their figures with b.ReportMetric; the ones that have a target also
# report "ratio" and log a line "LIMIT <name>: <figure> vs <limit> -> ok|MISSED".
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchtime "${BENCHTIME:-1x}" -count "${COUNT:-1}" -timeout 60m ./... 2>&1 | tee "$out"
echo
echo "== figures against their limits"
grep -h 'LIMIT ' "$out" | sed 's/^ *//' | sort || echo "(no benchmark reported a limit)"

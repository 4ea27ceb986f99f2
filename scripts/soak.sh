#!/usr/bin/env bash
# Runs the randomized checks for a given time (default 30m):
# the planner check (reconcile), the end-to-end check (bridge), its
# offline runs and its e-mail level side by side, each from a time-chosen
# seed, and prints the cases per second of each and the seeds of any
# failure. Replay one failing seed with
#   PIMBRIDGE_SEED=N go test -run TestRandomizedPlanner ./reconcile/
#   PIMBRIDGE_SEED=N go test -run TestRandomizedBridge ./bridge/
#   PIMBRIDGE_SEED=N go test -run TestRandomizedBridgeOffline ./bridge/
#   PIMBRIDGE_SEED=N go test -run TestRandomizedMail ./bridge/mailtrack/
# and keep it in reconcile/testdata/randomized/planner-seeds.txt or
# bridge/testdata/randomized/{bridge,offline}-seeds.txt.
set -uo pipefail
d=${1:-30m}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "soak: $d per level"
PIMBRIDGE_SOAK=$d go test -count=1 -timeout 0 -v -run '^TestRandomizedPlanner$' ./reconcile/ >"$out/planner" 2>&1 &
p1=$!
PIMBRIDGE_SOAK=$d go test -count=1 -timeout 0 -v -run '^TestRandomizedBridge$' ./bridge/ >"$out/bridge" 2>&1 &
p2=$!
PIMBRIDGE_SOAK=$d go test -count=1 -timeout 0 -v -run '^TestRandomizedBridgeOffline$' ./bridge/ >"$out/offline" 2>&1 &
p3=$!
PIMBRIDGE_SOAK=$d go test -count=1 -timeout 0 -v -run '^TestRandomizedMail$' ./bridge/mailtrack/ >"$out/mail" 2>&1 &
p4=$!
wait $p1; r1=$?
wait $p2; r2=$?
wait $p3; r3=$?
wait $p4; r4=$?
for lvl in planner bridge offline mail; do
  grep -h "^soak $lvl:" "$out/$lvl" || { echo "soak $lvl: no summary; output follows"; tail -50 "$out/$lvl"; }
  grep -h -A12 -- '--- FAIL\|replay:' "$out/$lvl" | grep -v '^=== ' | head -80
done
if [ $r1 -ne 0 ] || [ $r2 -ne 0 ] || [ $r3 -ne 0 ] || [ $r4 -ne 0 ]; then
  echo "soak: FAILED (planner exit $r1, bridge exit $r2, offline exit $r3, mail exit $r4)"
  exit 1
fi
echo "soak: ok"

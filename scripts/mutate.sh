#!/usr/bin/env bash
# Mutation testing of the rule packages with gremlins (pinned in tools/go.mod,
# so the main go.mod carries none of its dependencies). Runs one package at a
# time, one worker each, and prints each package's figures next to its limits:
#
#   LIMIT mutate reconcile efficacy 96.1% >= 95% ok
#   LIMIT mutate reconcile coverage 91.0% >= 90% ok
#
# efficacy = mutants the tests detect (killed or timed out) over the covered
# mutants, leaving out the ones listed as equivalent; coverage = covered mutants
# over all mutants that compile. Exits non-zero when a figure is below its limit.
#
#   MUTATE_PKGS="reconcile idmap"   run only these rows of the table below
#   MUTATE_WORKERS=1                gremlins workers (the CPU is shared)
#   MUTATE_TIMEOUT_COEF=6           per-mutant timeout = coverage run time x this
#   MUTATE_OUT=dir                  keep gremlins' JSON results there
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# name | directory | files that count ("*" = every non-test file) |
# efficacy limit | coverage limit | test flags (go test, via GOFLAGS)
#
# bridge's decision code is the step that picks a pair's change-matrix cell
# and what it writes (apply.go), which pendings apply in a cycle, the
# mass-delete guard and the fatal/transient split (cycle.go), what a CRM or
# PIM change becomes as a pending (intake.go) and a full set's absences as
# deletions (fullset.go). The rest is plumbing: constructors, statistics,
# the DAV adapter, dry-run wrappers, the live feed's timers, the directory
# copy, progress callbacks, and fields.go, whose format code is mapping's.
# offline's decision code is the replay's verdict per row and group, its
# retry rule and the OnError choice (goonline.go), the dynamic batch sizing
# (batching.go) and the client-state machine (state.go); the rest moves
# bytes between the replica, the queue and the server.
# mapping is the format code (vCard, iCalendar, mail): its limit is 90% of
# covered mutants killed; its coverage limit is the figure measured when the
# limit was set (78%), so that it does not fall.
# The randomized end-to-end checks (TestRandomized*) of bridge take 2 of its
# 2.5 minutes a run; its mutants run without them.
table() {
	cat <<'EOF'
reconcile|reconcile|*|95|90|
idmap|idmap|*|95|90|
bridge|bridge|apply.go cycle.go intake.go fullset.go|95|90|-skip=^TestRandomized
offline|offline|goonline.go batching.go state.go|95|90|
mapping|mapping|*|90|78|
EOF
}

workers=${MUTATE_WORKERS:-1}
coef=${MUTATE_TIMEOUT_COEF:-6}
want=${MUTATE_PKGS:-}
outdir=${MUTATE_OUT:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$outdir" ] || outdir=$tmp
mkdir -p "$outdir"

bin=$tmp/gremlins
(cd tools && go build -o "$bin" github.com/go-gremlins/gremlins/cmd/gremlins)

limits=$tmp/limits
: >"$limits"
fail=0
start=$(date +%s)
while IFS='|' read -r name dir files effLimit covLimit flags; do
	[ -n "$name" ] || continue
	if [ -n "$want" ] && ! grep -qw -- "$name" <<<"$want"; then
		continue
	fi
	excl=()
	# mutants only in this directory's own files: not its subpackages
	excl+=(-E '/')
	if [ "$files" != "*" ]; then
		for f in "$dir"/*.go; do
			b=$(basename "$f")
			case $b in *_test.go) continue ;; esac
			if ! grep -qw -- "$b" <<<"$files"; then
				excl+=(-E "^${b//./\\.}\$")
			fi
		done
	fi
	out=$outdir/$name.json
	echo "== mutate $name ($dir: $files) workers=$workers timeout-coefficient=$coef ${flags:+flags=$flags}"
	t0=$(date +%s)
	# -count=1: a cached coverage run would make gremlins' timeout ~0.
	GOFLAGS="${GOFLAGS:-} -count=1 $flags" "$bin" unleash --silent \
		--workers "$workers" --timeout-coefficient "$coef" \
		-o "$out" "${excl[@]}" "$root/$dir" || true
	if [ ! -s "$out" ]; then
		echo "mutate $name: gremlins wrote no results" >&2
		echo "LIMIT mutate $name efficacy n/a >= ${effLimit}% MISSED" >>"$limits"
		fail=1
		continue
	fi
	eq=scripts/mutate-equivalent/$name.txt
	[ -f "$eq" ] || eq=/dev/null
	# Each equivalent mutant is a line "file:line:col TYPE  reason".
	res=$(python3 - "$out" "$eq" "$dir" <<'PY'
import json, sys
out, eqf, d = sys.argv[1:]
eq = {}
for ln in open(eqf):
    ln = ln.strip()
    if not ln or ln.startswith("#"):
        continue
    parts = ln.split(None, 2)
    eq[(parts[0], parts[1])] = parts[2] if len(parts) > 2 else ""
r = json.load(open(out))
c = dict(KILLED=0, LIVED=0, EQUIV=0, TIMEDOUT=0, NOTCOV=0, NOTVIABLE=0)
lived, used = [], set()
for f in r["files"]:
    fn = f["file_name"]
    fn = fn if fn.startswith(d + "/") else d + "/" + fn
    for m in f["mutations"]:
        k = ("%s:%d:%d" % (fn, m["line"], m["column"]), m["type"])
        s = m["status"]
        if s == "LIVED" and k in eq:
            c["EQUIV"] += 1; used.add(k)
        elif s == "LIVED":
            c["LIVED"] += 1; lived.append("%s %s" % k)
        elif s == "KILLED":
            c["KILLED"] += 1
        elif s == "TIMED OUT":
            c["TIMEDOUT"] += 1
        elif s == "NOT COVERED":
            c["NOTCOV"] += 1
        elif s == "NOT VIABLE":
            c["NOTVIABLE"] += 1
for k in sorted(set(eq) - used):
    print("note: equivalent entry %s %s matched no living mutant (stale?)" % k, file=sys.stderr)
for l in sorted(lived):
    print("  LIVED " + l, file=sys.stderr)
det = c["KILLED"] + c["TIMEDOUT"]
cov = det + c["LIVED"] + c["EQUIV"]
eff = 100.0 * det / (det + c["LIVED"]) if det + c["LIVED"] else 0.0
mc = 100.0 * cov / (cov + c["NOTCOV"]) if cov + c["NOTCOV"] else 0.0
print("%.1f %.1f %d %d %d %d %d %d" % (eff, mc, c["KILLED"], c["TIMEDOUT"], c["LIVED"], c["EQUIV"], c["NOTCOV"], c["NOTVIABLE"]))
PY
)
	read -r eff mcov killed timedout lived equiv notcov notviable <<<"$res"
	echo "   killed $killed, timed out $timedout, lived $lived, equivalent $equiv, not covered $notcov, not viable $notviable ($(($(date +%s) - t0))s)"
	for kind in efficacy coverage; do
		if [ $kind = efficacy ]; then v=$eff l=$effLimit; else v=$mcov l=$covLimit; fi
		verdict=ok
		if ! python3 -c "import sys; sys.exit(0 if float('$v') >= float('$l') else 1)"; then
			verdict=MISSED
			fail=1
		fi
		echo "LIMIT mutate $name $kind ${v}% >= ${l}% $verdict" >>"$limits"
	done
done < <(table)

echo
echo "== figures against their limits ($(($(date +%s) - start))s)"
cat "$limits"
exit $fail

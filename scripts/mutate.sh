#!/usr/bin/env bash
# Mutation testing of the rule packages with gremlins (pinned in tools/go.mod,
# so the main go.mod carries none of its dependencies). Runs one package at a
# time, one worker each, and prints each package's figures next to its limits:
#
#   LIMIT mutate reconcile efficacy 96.1% >= 95% ok
#   LIMIT mutate reconcile coverage 91.0% >= 90% ok
#
# The figures are gremlins' own: efficacy = killed / (killed + lived), coverage
# = (killed + lived) / (killed + lived + not covered); a mutant that timed out
# or does not compile counts in neither. Mutants listed as equivalent in
# scripts/mutate-equivalent/<name>.txt (no test can tell them from the code,
# each line says why) are left out of efficacy but count as covered. Mutants
# in constant declarations (`Kind = iota + 1`) are left out of coverage: a
# constant has no coverage block, so gremlins can never run them (it marks
# them NOT COVERED whatever the tests do); they are printed as "const".
# Mutants in a switch's case expressions lie outside every coverage block
# too (a block starts after the case's colon), so gremlins never runs them
# either; those whose switch the tests reach (by a coverage profile of the
# same tests) are printed as "case" and left out of coverage, the others
# count as not covered. The named rule tests are what guards those.
# Exits non-zero when a figure is below its limit.
#
#   MUTATE_PKGS="reconcile idmap"   run only these rows of the table below
#   MUTATE_WORKERS=1                gremlins workers (the CPU is shared)
#   MUTATE_TIMEOUT_COEF=10          per-mutant timeout = coverage run time x this
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
coef=${MUTATE_TIMEOUT_COEF:-10}
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
	cov=$tmp/$name.cov
	GOFLAGS="${GOFLAGS:-} -count=1 $flags" go test -coverprofile="$cov" "./$dir/" >/dev/null 2>&1 || : >"$cov"
	res=$(python3 - "$out" "$eq" "$dir" "$cov" <<'PY'
import json, re, sys
out, eqf, d, covf = sys.argv[1:]
blocks = {}
for ln in open(covf):
    m = re.match(r".*/(" + re.escape(d) + r"/[^/:]+\.go):(\d+)\.(\d+),(\d+)\.(\d+) \d+ (\d+)$", ln.strip())
    if m and int(m.group(6)) > 0:
        blocks.setdefault(m.group(1), []).append(tuple(int(m.group(i)) for i in range(2, 6)))
def reached(fn, line):
    # the line of the switch that holds this case, covered by some block
    src = open(fn).read().split("\n")
    ind = len(src[line - 1]) - len(src[line - 1].lstrip("\t"))
    for i in range(line - 1, 0, -1):
        t = src[i - 1]
        if t.strip() and len(t) - len(t.lstrip("\t")) == ind and re.match(r"\s*(switch|select)\b", t):
            return any(sl <= i <= el for sl, sc, el, ec in blocks.get(fn, []))
    return False
eq = {}
for ln in open(eqf):
    ln = ln.strip()
    if not ln or ln.startswith("#"):
        continue
    parts = ln.split(None, 2)
    eq[(parts[0], parts[1])] = parts[2] if len(parts) > 2 else ""
def const_lines(fn):
    # Lines inside const declarations: `const X = ...` or a `const (` block.
    lines, inside = set(), False
    for i, ln in enumerate(open(fn), 1):
        t = ln.rstrip("\n")
        if inside:
            lines.add(i)
            if t == ")":
                inside = False
        elif t.startswith("const ("):
            inside = True
        elif t.startswith("const ") or t.startswith("\tconst "):
            lines.add(i)
    return lines
r = json.load(open(out))
c = dict(KILLED=0, LIVED=0, EQUIV=0, TIMEDOUT=0, NOTCOV=0, NOTVIABLE=0, CONST=0, CASE=0)
notcov = []
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
        elif s == "NOT COVERED" and m["line"] in const_lines(fn):
            c["CONST"] += 1
        elif s == "NOT COVERED" and re.match(r"\s*case\b", open(fn).read().split("\n")[m["line"] - 1]) and reached(fn, m["line"]):
            c["CASE"] += 1
        elif s == "NOT COVERED":
            c["NOTCOV"] += 1; notcov.append("%s %s" % k)
        elif s == "NOT VIABLE":
            c["NOTVIABLE"] += 1
for k in sorted(set(eq) - used):
    print("note: equivalent entry %s %s matched no living mutant (stale?)" % k, file=sys.stderr)
for l in sorted(lived):
    print("  LIVED " + l, file=sys.stderr)
for l in sorted(notcov):
    print("  NOT COVERED " + l, file=sys.stderr)
det = c["KILLED"]
cov = det + c["LIVED"] + c["EQUIV"]
eff = 100.0 * det / (det + c["LIVED"]) if det + c["LIVED"] else 0.0
mc = 100.0 * cov / (cov + c["NOTCOV"]) if cov + c["NOTCOV"] else 0.0
raw = det + c["LIVED"] + c["EQUIV"]
print("  gremlins' own figures: efficacy %.1f%%, coverage %.1f%%" % (
    100.0 * det / raw if raw else 0.0, 100.0 * raw / (raw + c["NOTCOV"] + c["CONST"] + c["CASE"]) if raw else 0.0), file=sys.stderr)
print("%.1f %.1f %d %d %d %d %d %d %d %d" % (eff, mc, c["KILLED"], c["TIMEDOUT"], c["LIVED"], c["EQUIV"], c["NOTCOV"], c["NOTVIABLE"], c["CONST"], c["CASE"]))
PY
)
	read -r eff mcov killed timedout lived equiv notcov notviable const cases <<<"$res"
	echo "   killed $killed, lived $lived, equivalent $equiv, not covered $notcov, timed out $timedout, not viable $notviable, const $const, case $cases ($(($(date +%s) - t0))s)"
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

# pimbridge: `make check` is everything CI runs (README's test command);
# `make bench` prints every benchmark figure next to its limit.
GO      ?= go
TIMEOUT ?= 60m

.PHONY: check lint test testdeps bench fuzz faults build soak randomized mutate

check: lint testdeps test randomized

build:
	$(GO) build ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

# Installs the real PIM servers the integration tests start (Radicale,
# Xandikos, Dovecot, Cyrus, vdirsyncer) from Debian's packages when they are missing.
testdeps:
	./scripts/install-test-deps.sh

test:
	$(GO) test -race -timeout $(TIMEOUT) ./...

bench:
	./scripts/bench.sh

# Mutation testing (gremlins, pinned in tools/go.mod) of the rule packages,
# one package at a time; prints each package's figures next to its limits
# and fails when one is below. Not part of check: it takes a long while.
# MUTATE_PKGS="reconcile idmap" runs some packages only.
mutate:
	./scripts/mutate.sh

# Runs every fuzz target for FUZZTIME each (default 1m).
FUZZTIME ?= 1m
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# The full fault runs of issue 4: kill -9 at 30 random points of a 300-item
# two-way sync on davserver and Radicale (plain `go test` uses fewer points),
# and the resetting proxy with 500s and 429s. About 10 minutes.
faults: testdeps
	PIMBRIDGE_KILL_POINTS=30 $(GO) test -run 'TestCrash_KillNine|TestFaults_' -timeout $(TIMEOUT) -v ./integration/

# The randomized checks of issue 20 at their full count (2,000 planner
# cases, 100 end-to-end runs, 30 end-to-end runs that go offline mid-run);
# the -race build of `test` runs a few end-to-end seeds only, its SQLite
# servers being several times slower.
randomized:
	$(GO) test -count=1 -timeout $(TIMEOUT) -run 'TestRandomized' ./reconcile/ ./bridge/

# The randomized checks of issue 20 (planner and end to end) for SOAK each,
# side by side (default 30m); prints cases/s and the seeds of any failure.
SOAK ?= 30m
soak:
	./scripts/soak.sh $(SOAK)

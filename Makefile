# pimbridge: `make check` is everything CI runs (README's test command);
# `make bench` prints every benchmark figure next to its limit.
GO      ?= go
TIMEOUT ?= 60m

.PHONY: check lint test test-postgres testdeps bench fuzz faults build soak randomized mutate

check: lint testdeps test test-postgres randomized

build:
	$(GO) build ./...

# golangci-lint is installed pinned with `go install pkg@version` (not a
# tools module: that would pull its ~200 modules into go.mod and go.sum).
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell $(GO) env GOPATH)/bin/golangci-lint

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	@$(GOLANGCI_LINT) version 2>/dev/null | grep -q "version $(GOLANGCI_LINT_VERSION:v%=%) " || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOLANGCI_LINT) run ./...

# Installs the real PIM servers the integration tests start (Radicale,
# Xandikos, Dovecot, Cyrus, vdirsyncer) from Debian's packages when they are missing.
testdeps:
	./scripts/install-test-deps.sh

test:
	$(GO) test -race -timeout $(TIMEOUT) ./...

# The crmstore and crmserver suites again with the CRM store on PostgreSQL
# (one suite, two backends, chosen by PIMBRIDGE_TEST_CRM_DB), and
# an offline and an integration test that start a CRM server. The tests
# start their own PostgreSQL (testdeps installs it). The multi-node tests
# (TestPostgres_*, TestMultiNode_*, TestTwoNodes_*) run on PostgreSQL in
# `test` already, under -race (with the PostgreSQL-only goroutines); this
# second pass runs without it (about 10 min with -race on 2 busy cores).
test-postgres:
	PIMBRIDGE_TEST_CRM_DB=postgres $(GO) test -timeout $(TIMEOUT) ./crm/crmstore/ ./crm/crmserver/
	PIMBRIDGE_TEST_CRM_DB=postgres $(GO) test -timeout $(TIMEOUT) -run 'TestEngine_GoOffline$$' ./offline/
	PIMBRIDGE_TEST_CRM_DB=postgres $(GO) test -timeout $(TIMEOUT) -run 'TestBasic_ContactsBothWays$$' ./integration/

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

# The full fault runs: kill -9 at 30 random points of a 300-item
# two-way sync on davserver and Radicale (plain `go test` uses fewer points),
# and the resetting proxy with 500s and 429s. About 10 minutes.
faults: testdeps
	PIMBRIDGE_KILL_POINTS=30 $(GO) test -run 'TestCrash_KillNine|TestFaults_' -timeout $(TIMEOUT) -v ./integration/

# The randomized checks at their full count (2,000 planner
# cases, 100 end-to-end runs, 30 end-to-end runs that go offline mid-run,
# 20 e-mail runs against the in-process IMAP server); the -race build of
# `test` runs a few end-to-end seeds only, its SQLite servers being
# several times slower.
randomized:
	$(GO) test -count=1 -timeout $(TIMEOUT) -run 'TestRandomized' ./reconcile/ ./bridge/ ./bridge/mailtrack/

# The randomized checks (planner and end to end) for SOAK each,
# side by side (default 30m); prints cases/s and the seeds of any failure.
SOAK ?= 30m
soak:
	./scripts/soak.sh $(SOAK)

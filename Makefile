# Quiver's entry point: `make demo` runs the whole loop locally, `make test` runs everything CI runs.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
TESTFLAGS ?=
FUZZTIME  ?= 10s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.Version=$(VERSION)
# golangci-lint is pinned here and run with `go run`, which builds it from the Go module proxy
# (checked against sum.golang.org) into the build cache without touching go.mod: its own
# dependency graph would otherwise be resolved together with Quiver's.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT         ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: all build test vet fmt-check lint unit fuzz bench proto proto-check proto-lint onnxruntime duckdb trino kafka s3 testenv-deps demo ui-screenshots clean

all: build

## build: the quiver binary and the example Go trainer (bin/quiver, bin/shop-trainer)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/quiver ./cmd/quiver
	$(GO) build -o $(BIN)/shop-trainer ./examples/shop/trainer

## test: everything CI runs — vet, gofmt check, golangci-lint, generated code fresh, the race-enabled suite (ONNX tests included), fuzzing
test: vet fmt-check lint proto-check unit fuzz

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## onnxruntime: install the pinned ONNX Runtime library (from the npm package onnxruntime-node)
onnxruntime:
	@./scripts/onnxruntime.sh

## lint: golangci-lint with .golangci.yml (errorlint, staticcheck, errcheck, ...)
lint:
	$(GOLANGCI_LINT) run $(PKGS)

## duckdb: install DuckDB (npm @duckdb/node-api, pinned by scripts/duckdb/package-lock.json), the reference engine of the aggregation tests
duckdb:
	npm ci --prefix scripts/duckdb --no-audit --no-fund --loglevel=error

## trino, kafka, s3: install the real servers the tests start (docs/testing.md): Trino 483 assembled
## from Maven Central parts, Kafka 4.4.0 from Maven Central, SeaweedFS built from its Go module.
## Each is pinned and checksummed, cached in ${QUIVER_CACHE:-$HOME/.cache/quiver}; a second run is instant.
trino:
	@./scripts/trino.sh
kafka:
	@./scripts/kafka.sh
s3:
	@./scripts/seaweedfs.sh
testenv-deps: trino kafka s3

# The test servers (internal/testenv) that many packages need, Trino, Kafka and S3, are started
# once per run: QUIVER_TESTENV_DIR names a fresh run directory where the first test binary that
# needs one records it and the others reuse it; bin/testenv stops them all when the run ends,
# however it ends (docs/testing.md). TESTENV_RUN prefixes a command with that and with the
# install paths of every component.
define TESTENV_RUN
	$(GO) build -o $(BIN)/testenv ./internal/testenv/cmd/testenv && \
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/quiver-testenv-XXXXXX") && \
	trap '$(BIN)/testenv stop "'"$$dir"'"' EXIT && trap 'exit 130' INT TERM && \
	QUIVER_TESTENV_DIR=$$dir \
	QUIVER_TRINO_HOME=$$(./scripts/trino.sh) \
	QUIVER_KAFKA_HOME=$$(./scripts/kafka.sh) \
	QUIVER_WEED=$$(./scripts/seaweedfs.sh) \
	QUIVER_ONNXRUNTIME_LIB=$$(./scripts/onnxruntime.sh)
endef

unit: duckdb testenv-deps
	@$(TESTENV_RUN) $(GO) test -race -timeout 30m $(TESTFLAGS) $(PKGS)

# A short run of each fuzz target, on top of the seed corpora the unit tests already replay.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./definitions
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRow$$' -fuzztime $(FUZZTIME) ./online
	$(GO) test -run '^$$' -fuzz '^FuzzReadTiles$$' -fuzztime $(FUZZTIME) ./online
	$(GO) test -run '^$$' -fuzz '^FuzzRequests$$' -fuzztime $(FUZZTIME) ./serving

bench: testenv-deps
	@$(TESTENV_RUN) $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## proto: regenerate the gRPC and HTTP/JSON gateway code (needs protoc and the well-known types: apt-get install -y protobuf-compiler libprotobuf-dev)
proto:
	./scripts/proto.sh

## proto-check: regenerate and fail when the committed generated code differs (or is missing)
proto-check: proto
	git diff --exit-code proto/
	@out=$$(git status --porcelain --untracked-files=all proto/); \
	if [ -n "$$out" ]; then echo "proto-check: generated files not committed:"; echo "$$out"; exit 1; fi

## proto-lint: buf lint of proto/ (buf.yaml). buf is not a go.mod tool (it would pull hundreds of
## modules into go.sum); install it with: go install github.com/bufbuild/buf/cmd/buf@v1.75.0
proto-lint:
	@command -v buf >/dev/null || { echo "proto-lint: buf not found; go install github.com/bufbuild/buf/cmd/buf@v1.75.0"; exit 1; }
	buf lint

## ui-screenshots: regenerate docs/ui/*.png from the web UI's browser tests (needs chromium)
ui-screenshots:
	QUIVER_UI_SCREENSHOTS=1 $(GO) test -count=1 -run TestBrowser ./ui

## demo: the whole loop on embedded defaults, no servers needed
demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)

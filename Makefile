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

.PHONY: all build test vet fmt-check lint unit fuzz bench proto proto-check proto-lint onnxruntime duckdb demo ui-screenshots clean

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

unit: duckdb
	QUIVER_ONNXRUNTIME_LIB=$$(./scripts/onnxruntime.sh) $(GO) test -race -timeout 30m $(TESTFLAGS) $(PKGS)

# A short run of each fuzz target, on top of the seed corpora the unit tests already replay.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./definitions
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRow$$' -fuzztime $(FUZZTIME) ./online
	$(GO) test -run '^$$' -fuzz '^FuzzReadTiles$$' -fuzztime $(FUZZTIME) ./online
	$(GO) test -run '^$$' -fuzz '^FuzzRequests$$' -fuzztime $(FUZZTIME) ./serving
	$(GO) test -run '^$$' -fuzz '^FuzzReadSegment$$' -fuzztime $(FUZZTIME) ./ingest

bench:
	QUIVER_ONNXRUNTIME_LIB=$$(./scripts/onnxruntime.sh) $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

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

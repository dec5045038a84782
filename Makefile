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

.PHONY: all build test vet fmt-check lint unit fuzz bench proto proto-check proto-lint feast feast-proto feast-proto-check bench-feast onnxruntime duckdb trino kafka s3 testenv-deps demo ui-screenshots clean \
	python-proto python-proto-check python-test bench-python release release-check

all: build

## build: the quiver binary and the example Go trainer (bin/quiver, bin/shop-trainer)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/quiver ./cmd/quiver
	$(GO) build -o $(BIN)/shop-trainer ./examples/shop/trainer

## test: everything CI runs — vet, gofmt check, golangci-lint, generated code fresh (Go, Feast, Python stubs), the race-enabled suite (ONNX and Feast tests included), fuzzing, the Python client's suite
test: vet fmt-check lint proto-check feast-proto-check python-proto-check unit fuzz python-test

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
## from Maven Central parts, Kafka 4.4.0 and S3Proxy 4.1.0 (the S3 server) from Maven Central.
## Each is pinned and checksummed, cached in ${QUIVER_CACHE:-$HOME/.cache/quiver}; a second run is instant.
trino:
	@./scripts/trino.sh
kafka:
	@./scripts/kafka.sh
s3:
	@./scripts/s3proxy.sh
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
	QUIVER_S3PROXY_HOME=$$(./scripts/s3proxy.sh) \
	QUIVER_ONNXRUNTIME_LIB=$$(./scripts/onnxruntime.sh)
endef

unit: duckdb feast testenv-deps
	@$(TESTENV_RUN) $(GO) test -race -timeout 30m $(TESTFLAGS) $(PKGS)

# A short run of each fuzz target, on top of the seed corpora the unit tests already replay.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

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

## feast: install Feast 0.67 (PyPI, pinned by scripts/feast/constraints.txt) into a cached venv, which quiver import feast's acceptance test and bench-feast use
feast:
	@./scripts/feast.sh >/dev/null

## feast-proto: regenerate the Go code of Feast's registry protos (definitions/feast/internal/proto)
feast-proto:
	./scripts/feast-proto.sh

## feast-proto-check: regenerate and fail when the committed Feast proto Go code differs (or is missing)
feast-proto-check: feast-proto
	git diff --exit-code definitions/feast/internal/proto/
	@out=$$(git status --porcelain --untracked-files=all definitions/feast/internal/proto/); \
	if [ -n "$$out" ]; then echo "feast-proto-check: generated files not committed:"; echo "$$out"; exit 1; fi

## bench-feast: Feast's Python SDK and Quiver on the same data (scripts/bench-feast.sh)
bench-feast: build feast
	./scripts/bench-feast.sh

## proto-lint: buf lint of proto/ (buf.yaml). buf is not a go.mod tool (it would pull hundreds of
## modules into go.sum); install it with: go install github.com/bufbuild/buf/cmd/buf@v1.75.0
proto-lint:
	@command -v buf >/dev/null || { echo "proto-lint: buf not found; go install github.com/bufbuild/buf/cmd/buf@v1.75.0"; exit 1; }
	buf lint

## python-proto: regenerate the Python client's stubs (python/src/quiver/serving/v1) with the pinned grpcio-tools
python-proto:
	./scripts/python-proto.sh

## python-proto-check: regenerate the Python stubs and fail when the committed ones differ (or are missing)
python-proto-check: python-proto
	git diff --exit-code python/src/quiver/serving/
	@out=$$(git status --porcelain --untracked-files=all python/src/quiver/serving/); \
	if [ -n "$$out" ]; then echo "python-proto-check: generated files not committed:"; echo "$$out"; exit 1; fi

## python-test: install ./python into the cached venv (scripts/python-venv.sh) and run its pytest suite
## against a real quiver serve on throwaway Redis and PostgreSQL (PYTEST_ARGS to select tests)
python-test: build
	@venv=$$(./scripts/python-venv.sh) && rm -rf python/build && \
	"$$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./python && \
	cd python && QUIVER_BIN=$(CURDIR)/$(BIN)/quiver QUIVER_TRAINER_DIR=$(CURDIR)/$(BIN) \
	QUIVER_ONNXRUNTIME_LIB=$$(../scripts/onnxruntime.sh) "$$venv/bin/python" -m pytest $(PYTEST_ARGS) tests

## bench-python: get_online_features p50/p99 from Python against the Go client on one server (docs/BENCHMARKS.md)
bench-python: build
	./scripts/bench-python.sh

## ui-screenshots: regenerate docs/ui/*.png from the web UI's browser tests (needs chromium)
ui-screenshots:
	QUIVER_UI_SCREENSHOTS=1 $(GO) test -count=1 -run TestBrowser ./ui

## release: reproducible release binaries in dist/ — linux/amd64 (cgo, ONNX Runtime), linux/arm64 and
## darwin/arm64 (pure Go) — stripped, -trimpath, the version stamped, with a CycloneDX SBOM each and
## SHA256SUMS (scripts/release.sh; docs/deploy.md)
release:
	VERSION=$(VERSION) ./scripts/release.sh dist

## release-check: build the release twice (two checkouts, two directories) and fail unless identical
release-check:
	VERSION=$(VERSION) ./scripts/release-check.sh

## demo: the whole loop on embedded defaults, no servers needed
demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN) dist

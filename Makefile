# Quiver's entry point: `make demo` runs the whole loop locally, `make test` runs everything CI runs.
GO        ?= go
BIN       ?= bin/quiver
PKGS      ?= ./...
TESTFLAGS ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.Version=$(VERSION)

.PHONY: all build test vet fmt-check unit fuzz bench proto demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/quiver

## test: everything CI runs — vet, gofmt check, the race-enabled test suite, a short fuzz pass.
test: vet fmt-check unit fuzz

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -timeout 20m $(TESTFLAGS) $(PKGS)

# A short run of each fuzz target on top of the seed corpus the unit tests already replay.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./definitions

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

proto:
	@echo "no .proto files yet"

demo: build
	./scripts/demo.sh

clean:
	rm -rf bin

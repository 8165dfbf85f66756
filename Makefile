# The README's commands. `make run` and `make test` install what is missing first.
GO       ?= go
BIN      := bin/livesnap
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export PATH := $(PATH):/usr/local/go/bin

.PHONY: deps build run demo test test-short fuzz bench bench-smoke clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/livesnap

# Run the service on its embedded defaults: SQLite + ./data, API on 127.0.0.1:8080.
run: build
	./$(BIN) serve

# Publish the sample clip as a live RTMP stream and snapshot it end to end.
demo: build
	@bash scripts/demo.sh

# Every test: vet, the race detector, the end-to-end stories, and a short fuzz pass.
test:
	@bash scripts/install-deps.sh --with-test-tools
	$(GO) vet ./...
	$(GO) test -race -timeout 40m ./...
	@$(MAKE) --no-print-directory fuzz

test-short: deps
	$(GO) test -short ./...

# A short pass of every fuzz target (go test -fuzz takes one target at a time).
FUZZTIME ?= 8s
FUZZ_TARGETS := ./internal/snapshot:FuzzExpand ./internal/source:FuzzSplitRTMPURL ./internal/source:FuzzBitstream ./internal/source:FuzzChunkParser ./internal/source:FuzzDirectVideo \
	./internal/rpc:FuzzParseParams ./internal/rpc:FuzzVerifyV1 ./internal/rpc:FuzzVerifyV3 \
	./internal/api:FuzzParams ./internal/blob:FuzzParseConfig ./internal/bitstream:FuzzH264RecoveryPoint
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# livesnap against one ffmpeg per stream on the same replayed live streams (docs/benchmarks.md).
# Takes hours on 2 cores; BENCH_ARGS passes flags, e.g. BENCH_ARGS="--only compare --compare-streams 10".
BENCH_ARGS ?=
bench: build
	$(GO) build -o bin/livesnap-bench ./cmd/livesnap-bench
	./bin/livesnap-bench all --livesnap $(BIN) --json bench-results.json $(BENCH_ARGS)

# The short version `make test` runs too: 3 streams, both sides, under a minute.
bench-smoke: deps
	$(GO) test -count=1 -run 'TestSmoke' -v ./internal/bench

clean:
	rm -rf bin

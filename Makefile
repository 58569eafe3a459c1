# mqttctl: see README.md. `make run` starts the main job, `make test` runs every test.
GO      ?= go
BIN     ?= bin/mqttctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
RUNDIR  ?= mqttctl-data
PREFIX  ?= /usr/local
# staticcheck comes from the Go module proxy at a pinned version (CI reaches
# only the proxy and Debian); `go run` builds it once into the build cache.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build install run test test-deps bench lint clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mqttctl

# mqttctl in $(PREFIX)/bin, where cron and services find it.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mqttctl

# The main job on its embedded default: a mutual-TLS broker on
# 127.0.0.1:8883 with fresh certificates in $(RUNDIR) (reused on later runs).
run: build
	$(BIN) up --dir $(RUNDIR)

test-deps:
	./scripts/install-test-deps.sh

test: test-deps lint
	$(GO) test -count=1 -timeout 30m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin $(RUNDIR)

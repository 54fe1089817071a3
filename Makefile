# Archipelago — the two commands people need are `make demo` and `make test`.
SHELL      := /bin/bash
GO         ?= go
TOOLS_BIN  := $(CURDIR)/.tools/bin
LDFLAGS    := -X github.com/chatons/archipelago/internal/api.Version=$(shell git describe --always --dirty 2>/dev/null || echo dev)
TESTFLAGS  ?= -race -timeout 60m
DEMO_ARGS  ?=

export GOTOOLCHAIN := local
export ARCHIPELAGO_MINIO  ?= $(TOOLS_BIN)/minio
export ARCHIPELAGO_RESTIC ?= $(TOOLS_BIN)/restic
export ARCHIPELAGO_OIDC_PROVIDER ?= $(TOOLS_BIN)/oidc-provider

.PHONY: all build tools os-deps demo test vet bench bench-scale clean deb image

all: build

## build: compile bin/archipelago
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/archipelago ./cmd/archipelago

## tools: build the pinned MinIO and restic (tools/go.mod) and the test OpenID provider (tools/oidcprovider) into .tools/bin
tools: $(TOOLS_BIN)/minio $(TOOLS_BIN)/restic $(TOOLS_BIN)/oidc-provider

$(TOOLS_BIN)/restic: tools/go.mod tools/go.sum
	@echo "building restic (pinned in tools/go.mod) …"
	cd tools && GOBIN=$(TOOLS_BIN) $(GO) install github.com/restic/restic/cmd/restic
	@touch $@

# The OpenID provider the OIDC login tests run as a separate process: zitadel/oidc's example
# provider plus a users file and a groups claim, in a module of its own (tools/oidcprovider).
$(TOOLS_BIN)/oidc-provider: tools/oidcprovider/go.mod tools/oidcprovider/go.sum tools/oidcprovider/main.go
	@echo "building the test OpenID provider (tools/oidcprovider) …"
	cd tools/oidcprovider && $(GO) build -o $(TOOLS_BIN)/oidc-provider .

$(TOOLS_BIN)/minio: tools/go.mod tools/go.sum
	@echo "building MinIO (pinned in tools/go.mod; the first build takes a few minutes) …"
	cd tools && GOBIN=$(TOOLS_BIN) $(GO) install github.com/minio/minio
	@touch $@

## os-deps: install PostgreSQL and Chromium with apt-get when missing (root on Debian)
os-deps:
	@./scripts/os-deps.sh

## demo: run the sandbox federation on http://127.0.0.1:8080 (Ctrl-C stops and cleans up)
demo: os-deps tools build
	./bin/archipelago dev $(DEMO_ARGS)

## vet: go vet every package (and the Helm chart's test module, deploy/helm)
vet:
	$(GO) vet ./...
	cd deploy/helm && $(GO) vet ./...

## test: vet, then every test against real PostgreSQL, MinIO, restic and Chromium
test: os-deps tools build vet
	./bin/archipelago testenv -- $(GO) test $(TESTFLAGS) ./...
	@# The Helm chart's test is a module of its own (Helm and the Kubernetes API stay out of go.mod);
	@# it is single-threaded rendering, so no -race (which would rebuild the Kubernetes modules).
	cd deploy/helm && $(GO) test -timeout 60m ./...

## bench: the Go benchmarks, then the restore benchmarks that print ratios against plain restic
bench: os-deps tools build
	./bin/archipelago testenv -- $(GO) test -run '^$$' -bench . -benchtime 1x ./...
	./bin/archipelago testenv -- ./bench/restore-sample.sh
	./bin/archipelago testenv -- ./bench/restore-parallel.sh
	./bin/archipelago testenv -- ./bench/contenthash.sh

## deb: the Debian package (static binary, pinned restic, hardened systemd units) in dist/ (docs/deploy.md)
deb:
	$(GO) run ./deploy/packager deb -out dist

## image: the OCI image as a docker-archive tarball, dist/archipelago-image.tar (`docker load -i`; docs/deploy.md)
image:
	$(GO) run ./deploy/packager image -out dist

clean:
	rm -rf bin .tools artifacts dist

## bench-scale: seed 10 / 100 / 1,000 members (× 10 vaults, 7 days of tests) and print list, page, /metrics and report latencies, SQL per page, RSS and the P3 ratio (SIZES=…, DAYS=… to change; docs/scale.md)
SIZES ?= 10,100,1000
DAYS  ?= 7
bench-scale: os-deps build
	$(GO) run ./bench/scale -sizes $(SIZES) -days $(DAYS) $(BENCH_ARGS)

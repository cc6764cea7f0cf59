# defragd: `make demo` and `make test` each do all of their own set-up on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps etcd etcd-one helm goclients kube manifests chromium systemd-analyze build test unit demo bench bench-readme bench-daemon bench-daemon-readme bench-schedule bench-schedule-readme bench-reads bench-reads-readme bench-kube bench-kube-readme typecheck lint lint-imports format clean

help:
	@echo "make demo   start a local 3-member etcd, fragment it, and show defragd at work"
	@echo "make test   unit and integration tests against real etcd: the whole suite on 3.6, the etcd tests on 3.4, 3.5, 3.7 too (ETCD_VERSIONS=3.6 narrows)"
	@echo "make etcd   build the pinned etcd versions that are missing (scripts/etcd-versions) and list them"
	@echo "make helm   build the pinned helm when missing (scripts/helm, from go/helm; part of make test)"
	@echo "make kube   build kube-apiserver and the client-go load program when missing, and fetch the Prometheus Operator CRDs (go/kube; many minutes the first time; part of make test)"
	@echo "make manifests  render deploy/manifests/ from the Helm chart again (a test checks they match)"
	@echo "make lint   formatting and Biome's lint rules (part of make test); make format fixes the formatting"
	@echo "make lint-imports  the import boundaries between src's layers (part of make test)"
	@echo "make bench  benchmarks (not part of make test); ETCD_VERSION=3.7, DEFRAGD_BENCH_STOP_GRPC_ON_DEFRAG=1"
	@echo "make goclients  build the benchmark's Go clients (go/clients, clientv3) when missing; make bench does it"
	@echo "make bench-daemon  what defragd serve costs watching 10 clusters for 10 minutes (BENCH_CLUSTERS, BENCH_MINUTES)"
	@echo "make bench-schedule  cron etcdctl defrag vs defragd serve auto on two clusters at once (BENCH_MINUTES, default 12)"
	@echo "make bench-reads  does a defragmented member serve reads faster? (not part of make test)"
	@echo "make bench-kube  what each defrag tool costs kube-apiserver and client-go controllers, two sizes, then serve vs cron (about 25 min)"

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

deps: $(NPM_STAMP) etcd-one

# Every pinned etcd (3.4 from Debian; 3.5+ built from go/etcd/* and cached outside the tree),
# or those ETCD_VERSIONS lists; one line each: <version> <dir>.
etcd:
	@scripts/etcd-versions $(ETCD_VERSIONS)

# The one etcd that make demo and the benchmarks start: ETCD_VERSION (a line such as 3.7), default 3.6.
etcd-one:
	@scripts/etcd-versions $(or $(ETCD_VERSION),3.6) >/dev/null

# helm for the chart's tests (test/helm.test.ts): built from helm's Go module at the version go/helm/go.mod
# pins and cached outside the tree, as etcd is; scripts/helm ARGS runs it.
helm:
	@scripts/helm --path >/dev/null

# The benchmark's Go clients (go/clients: clientv3 sessions, elections, keep-alives, watch, Txn,
# lists), built from their Go module and cached outside the tree as helm is.
goclients:
	@scripts/go-bin clients >/dev/null

# kube-apiserver (Kubernetes' own module at the version go/kube/go.mod pins) and kube-load, the
# client-go load program, for the Kubernetes tests and benchmarks (dev/harness/kube.ts); cached
# outside the tree as helm is. The first build is long (here: modules 32 s; the build 19 CPU-minutes,
# 843 s user + 296 s system: an estimated 10 minutes on 2 idle cores; 22-24 minutes measured beside a
# benchmark). make test builds it; should the build fail, make test goes on and the tests that need it
# are skipped by name with the build's reason (kubeBinaries() in dev/harness/kube.ts).
kube:
	@scripts/go-bin kube >/dev/null || echo "make kube: the build failed (above); the Kubernetes tests will be skipped" >&2
	@scripts/prometheus-crds >/dev/null || echo "make kube: the Prometheus Operator's CRDs could not be had (above); the chart's install test will be skipped" >&2

# deploy/manifests/: the chart rendered with its default values, one file per mode.
manifests: helm
	@scripts/render-manifests

# The dashboard's end-to-end tests drive Debian's Chromium (playwright-core, no downloaded browser);
# make test installs it, make demo does not need it.
chromium:
	@bash scripts/ensure-chromium.sh

# deploy/systemd's units are checked with systemd-analyze verify (Debian's systemd package, nothing
# of it running); make test installs it.
systemd-analyze:
	@bash scripts/ensure-systemd-analyze.sh

build: $(NPM_STAMP)
	npm run build --silent

typecheck: $(NPM_STAMP)
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p web/tsconfig.json

# Biome (biome.json): the tree must be formatted as `make format` leaves it (line width 140) and pass the
# lint rules; each finding names the file, line and rule.
lint: $(NPM_STAMP)
	@npx biome ci --error-on-warnings .

format: $(NPM_STAMP)
	npx biome format --write .

# The floors of src/ (domain < etcd, policy < ... < cli), as rules in
# .dependency-cruiser.cjs; a broken one prints the import, the rule and why.
lint-imports: $(NPM_STAMP)
	@npx depcruise --config .dependency-cruiser.cjs --output-type err-long src dev test web

# The whole suite on the newest pinned 3.6, then the tests that start etcd on every other pinned
# version (ETCD_VERSIONS, a list such as "3.6" or "3.4 3.7", narrows it); per version how many ran and
# passed, and last the plain verdict "N passed, N failed". lint and lint-imports run before vitest; an
# unformatted file or a broken boundary stops here.
test: $(NPM_STAMP) chromium systemd-analyze helm kube typecheck lint lint-imports build
	@node scripts/test-versions.mjs

# node --import tsx, not the tsx CLI: the tsx CLI SIGKILLs its child when the child has not
# confirmed a signal within 30 ms (a busy machine), which would cut the demo's orderly stop short.
demo: deps build
	node --import tsx scripts/demo.mts

bench: deps build goclients
	npx tsx bench/run.mts

# Runs the benchmark and pastes its table into README.md's Performance section.
bench-readme: bench
	node scripts/paste-bench.mjs

# One defragd serve child process watching BENCH_CLUSTERS (10) real 3-member
# clusters for BENCH_MINUTES (10): RSS, CPU, event-loop delay, store growth
# against the goals; results in bench/results/daemon-*.
bench-daemon: deps build
	npx tsx bench/daemon.mts

# Runs it and pastes its table into README.md's Daemon performance subsection.
bench-daemon-readme: bench-daemon
	node scripts/paste-bench.mjs daemon

# Two clusters side by side for BENCH_MINUTES (default 12): cron etcdctl defrag vs defragd serve auto.
bench-schedule: deps build
	npx tsx bench/schedule/run.mts

# Runs it and pastes its table into README.md's Performance section.
bench-schedule-readme: bench-schedule
	node scripts/paste-bench-schedule.mjs

# One etcd member, the same data in a fragmented and a defragmented file: read
# latencies, snapshot time and size, warm and (where allowed) cold page cache.
# Settings: npx tsx bench/reads/run.mts --help (e.g. DEFRAGD_BENCH_READS_QUICK=1).
bench-reads: deps
	npx tsx bench/reads/run.mts

# Runs it and pastes its table into README.md's Performance section.
bench-reads-readme: bench-reads
	node scripts/paste-bench.mjs reads

# What each defrag tool costs a Kubernetes control plane: kube-apiserver and client-go controllers
# on fresh clusters at two sizes, then defragd serve against a cron for BENCH_KUBE_MINUTES (10).
# Settings: npx tsx bench/kube/run.mts --help. About 25 minutes here.
bench-kube: deps build kube
	npx tsx bench/kube/run.mts

# Runs it and pastes its tables into README.md's Kubernetes section.
bench-kube-readme: bench-kube
	node scripts/paste-bench.mjs kube

clean:
	rm -rf dist .vitest-results .demo

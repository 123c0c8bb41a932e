# The two commands a new user needs: `make dev` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## make test: create .venv when missing, install reliq with test extras, lint, type-check, run the suite
test: $(STAMP) lint typecheck unit

## the suite runs on 4 xdist workers: its tests mostly wait on Valkey and subprocesses, not on CPU
unit: $(STAMP)
	$(BIN)/pytest -q -n 4

lint: $(STAMP)
	$(BIN)/ruff check reliq gateway tests examples load_tests
	$(BIN)/ruff format --check reliq gateway tests examples load_tests

typecheck: $(STAMP)
	$(BIN)/mypy reliq gateway

## make dev: embedded Valkey (AOF, fsync always) + example workers
dev: $(STAMP)
	$(BIN)/python -m reliq dev examples.shop:app  # = `reliq dev` with no argument (reliq.examples.shop)

## make bench: one worker process draining no-op tasks, reliq vs peers (own venvs, made on first
## use), then the gateway under wrk, then function trees; results in load_tests/results/
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "make bench: wrk not found; install it first: apt-get install -y wrk"; exit 1; }
	$(BIN)/python -m load_tests.bench_workers
	$(BIN)/python -m load_tests.bench_flow
	$(BIN)/python -m load_tests.bench_gateway --duration 8 --rounds 3
	$(BIN)/python -m load_tests.bench_priority
	$(MAKE) bench-enqueue
	$(MAKE) bench-trees
	$(MAKE) bench-cluster
	$(MAKE) bench-cron
	$(MAKE) bench-latency
	$(MAKE) bench-scaling

## make bench-enqueue: enqueue rate of Client.send, Client.send_many (batches of 100 and 500) and
## raw redis-py XADD loops (awaited one by one, and pipelined in the same batches), alternated
.PHONY: bench-enqueue
bench-enqueue: $(STAMP)
	$(BIN)/python -m load_tests.bench_enqueue

## make bench-latency: send-to-start p50/p99 idle and under 50% load, /call of a no-op with one
## connection (wrk -c1); results in load_tests/results/latency-* (against Restate at one connection:
## python -m load_tests.bench_latency --restate --rounds 3, with the anchor's setup.sh run once)
.PHONY: bench-latency
bench-latency: $(STAMP)
	$(BIN)/python -m load_tests.bench_latency

## make bench-scaling: drain/s and RSS with 1 and 2 worker processes, with 10k and 100k queued, with
## 1, 10, 100 services (with a million, ~10 minutes: python -m load_tests.bench_scaling --sizes 10000,100000,1000000)
.PHONY: bench-scaling
bench-scaling: $(STAMP)
	$(BIN)/python -m load_tests.bench_scaling

## make bench-trees: durable function trees with one worker (trees/s against a plain invocation,
## with and without suspension; RSS with 10,000 suspended vs 100), then a parent calling a child
## over HTTP, reliq vs Restate (when the Restate anchor is set up: see load_tests/bench_trees_restate.py)
.PHONY: bench-trees
bench-trees: $(STAMP)
	$(BIN)/python -m load_tests.bench_trees
	$(BIN)/python -m load_tests.bench_trees_restate

## make bench-cron: tick placement with 1,000 schedules on one service and 3 worker processes
## (Redis commands per tick, scheduled time -> handler start p50/p99, exactly once checked)
.PHONY: bench-cron
bench-cron: $(STAMP)
	$(BIN)/python -m load_tests.bench_cron

## make bench-cluster: send and drain rates with 1, 2, 3 partitions on a 3-primary Valkey Cluster
## vs a single node (2 shared cores: overhead and correctness, not speed-up); results in load_tests/results/
.PHONY: bench-cluster
bench-cluster: $(STAMP)
	$(BIN)/python -m load_tests.bench_cluster

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .reliq

## make chaos: the long fault run (20,000 invocations, every nemesis); exits non-zero on any violation
.PHONY: chaos
chaos: $(STAMP)
	$(BIN)/python -m load_tests.chaos --n 20000 --duration 300 --nemesis all --seed 1 --drain-timeout 300

## make chaos-tree: function trees (parent, 3 children, a durable sleep, a promise) under every nemesis
.PHONY: chaos-tree
chaos-tree: $(STAMP)
	$(BIN)/python -m load_tests.chaos --workload tree --n 2000 --duration 120 --nemesis all --seed 1 --drain-timeout 180

## make chaos-cancel: compensating parents cancelled at random moments (before start, running,
## suspended, compensating) under every nemesis; exits non-zero on any violation
.PHONY: chaos-cancel
chaos-cancel: $(STAMP)
	$(BIN)/python -m load_tests.chaos --workload cancel --n 1000 --duration 90 --nemesis all --seed 1 --drain-timeout 180

## make chaos-failover: SIGKILL Cluster primaries (3 kills) under load, replica promoted; lost and
## duplicated work with gateway durability none, then replicas:1; exits non-zero on a loss under replicas:1
.PHONY: chaos-failover
chaos-failover: $(STAMP)
	$(BIN)/python -m load_tests.chaos_failover --n 3000 --duration 40 --kills 3 --durability none,replicas:1

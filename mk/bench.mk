# `make bench`: ml-service, a bare ASGI floor app and the usual FastAPI + pydantic +
# Pipeline.predict approach, one worker each under the same server (gunicorn + uvicorn worker),
# driven by wrk (from Debian's packages) on another core. Prints one table and writes it to
# bench/results/latest.{json,md}; fails if any request failed or answered wrongly.
# BENCH_DURATION: seconds per wrk run (default 2). BENCH_ROUNDS: runs of each kind, alternating,
# median kept (default 5). BENCH_ARGS: more options for bench/run.py (e.g. --strict to fail on a
# missed target, --src DIR to measure another source tree).

BENCH_DURATION ?= 2
BENCH_ROUNDS ?= 5
BENCH_ARGS ?=

.PHONY: bench lint-bench

bench: $(STAMP) $(MODEL) ## Benchmark: service vs floor vs FastAPI reference (bench/results/)
	scripts/ensure-apt.sh wrk taskset=util-linux
	$(BIN)/python bench/run.py --model-dir $(MODEL_DIR) --bin $(BIN) --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

lint-bench: $(STAMP) ## ruff over the benchmark harness
	$(BIN)/ruff check bench
	$(BIN)/ruff format --check bench

lint: lint-bench

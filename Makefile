# ringledger: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint dev validate clean bench bench-day

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)
	$(BIN)/dbt parse --project-dir . --profiles-dir . --quiet

demo: install
	$(BIN)/ringledger demo

test: install
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

# Issue 7: generate 1M legs once (cached in benchmarks/cache/), time a full run, append the
# figures to benchmarks/results.jsonl.
bench: install
	$(BIN)/ringledger bench --legs 1000000

# Issue 7's daily load: a year of 10M legs built without its last day, then that day added
# and run again; the line records the day's time and its share of the full build.
bench-day: install
	$(BIN)/ringledger bench --legs 10000000 --day

lint: install
	$(BIN)/ruff check orchestration tests

validate: install
	$(BIN)/dagster definitions validate

# The Dagster UI on http://127.0.0.1:3000 (loopback only), one run at a time (dagster.yaml).
dev: install
	mkdir -p .dagster_home && cp dagster.yaml .dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/dagster dev -h 127.0.0.1 -p 3000

clean:
	rm -rf target logs .dagster_home data/warehouse.duckdb data/ringledger.duckdb

# Two commands on a fresh machine: `make run` and `make test`. Both install first.
PY      ?= python3
VENV    := .venv
UV_VERSION := 0.13.9
UV      := $(shell command -v uv 2>/dev/null || echo "$(PY) -m uv")
DEMO_END  ?= 2026-11-27
DEMO_DAYS ?= 120
# `make test` runs the suite on this many pytest-xdist workers (one module, or the modules that
# share a session build, per worker: tests/conftest.py); TEST_WORKERS=1 runs it in one process
TEST_WORKERS ?= 2
PYTEST_WORKERS := $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install run test lint bench clean airflow metrics

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PY) -m uv --version >/dev/null 2>&1 || \
	  $(PY) -m pip install --quiet "uv==$(UV_VERSION)" || $(PY) -m pip install --quiet --user "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

# The one-pass JSON-lines reader (C, ingestion/gateway/_jsonl.c): built beside its source with
# the machine's C compiler; without one it says so and DuckDB reads the files alone (slower).
$(VENV)/.jsonl: $(VENV)/.installed ingestion/gateway/_jsonl.c ingestion/gateway/jsonl_build.py
	$(VENV)/bin/python -m ingestion.gateway.jsonl_build
	@touch $@

install: $(VENV)/.installed $(VENV)/.jsonl  ## create .venv from the lockfile, build the C reader

run: install  ## demo organisation -> ingest -> dbt -> forecast -> report, on DuckDB
	$(VENV)/bin/tokenbook run --demo --days $(DEMO_DAYS) --end $(DEMO_END)

test: install  ## every test (dbt, DuckDB, Airflow, GX, Prophet run for real)
	$(VENV)/bin/ruff check .
	# dbt parse + the semantic manifest's validation for the BigQuery target, offline
	$(VENV)/bin/tokenbook metrics validate --warehouse bigquery://tokenbook-offline/tokenbook
	$(VENV)/bin/pytest $(PYTEST_WORKERS)

# make metrics                     list the FinOps metrics (dbt semantic layer)
# make metrics Q="--metrics cost_per_outcome --group-by feature,metric_time__month"
metrics: install  ## `mf query` on the warehouse (after `make run`)
	$(VENV)/bin/tokenbook metrics $(if $(Q),query $(Q),list)

lint: install
	$(VENV)/bin/ruff check .

bench: install  ## every benchmark; each prints its figures and ratios
	$(VENV)/bin/python bench/ingest.py --rows 1000000
	$(VENV)/bin/python bench/transform.py
	$(VENV)/bin/python bench/forecast.py

airflow: install  ## Airflow standalone on 127.0.0.1:8080 with the DAGs and the demo warehouse
	bash scripts/airflow_standalone.sh

clean:
	rm -rf warehouse demo_data out reports exports airflow_home dbt_project/target dbt_project/logs
	rm -f ingestion/gateway/_jsonl*.so $(VENV)/.jsonl

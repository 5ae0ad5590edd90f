# The two commands: `make demo` and `make test`. Each installs what it needs. `make` alone lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ARGS ?=
# Test processes: most tests wait on a broker, a subprocess or a socket, so two share two cores well.
TEST_WORKERS ?= 2

.PHONY: demo test lint bench city-year compare mutation clean

.DEFAULT_GOAL := help
.PHONY: help
## List the targets with what each does (their ## lines).
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z][a-z-]*:/{if (doc != "") {sub(/:.*/, "", $$1); printf "  make %-10s %s\n", $$1, doc}} {doc=""}' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,durable,bench,loadtest]"
	touch $@

## Load the default city (100,000 residents, 20,000 entities) end to end and keep serving. ARGS="--city-scale" for a city.
demo: $(INSTALLED)
	$(BIN)/hub demo $(ARGS)

## Lint (ruff, buf, mypy, the import contracts) and run the test suite against the embedded broker (or HUB_BOOTSTRAP_SERVERS).
test: $(INSTALLED)
	./scripts/install-system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/buf lint
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(ARGS)

## Every benchmark with its defaults; each ends with its ratios against same-run baselines.
bench: $(INSTALLED)
	./scripts/install-system-deps.sh
	$(BIN)/python -m bench.cache
	$(BIN)/python -m bench.rpc
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.recovery
	$(BIN)/python -m bench.connector_pg
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.flows
	$(BIN)/python -m bench.receipts
	$(BIN)/python -m bench.case_ledger
	$(BIN)/python -m bench.inspections
	$(BIN)/python -m bench.compare

## The city year: 566,547 cases against the city-scale hub, with a summary and a chart in loadtest-results/.
city-year: $(INSTALLED)
	$(BIN)/python -m loadtest.city_year $(ARGS)

## The hub beside PostgreSQL and Redis on the same verification workload; chart in docs/img/.
compare: $(INSTALLED)
	./scripts/install-system-deps.sh
	$(BIN)/python -m bench.compare $(ARGS)

## Mutation testing (mutmut) of policy, masking, identifiers, cache table, connector runtime and notices,
## judged by the fast broker-free tests in pyproject.toml [tool.mutmut]; ends with the share killed per module.
mutation: $(INSTALLED)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python scripts/mutation_summary.py

## Lint only: ruff, buf, mypy and the import contracts.
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/buf lint
	$(BIN)/lint-imports
	$(BIN)/mypy

## Remove the virtualenv, hub data, caches and generated stubs.
clean:
	rm -rf $(VENV) .hub-data .pytest_cache .ruff_cache .mypy_cache .import_linter_cache hub/v1/*_pb2*.py hub/v1/*_pb2*.pyi hub/v1/.stamp

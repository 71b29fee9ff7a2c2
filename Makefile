# evergreen-etl developer targets. `make` alone lists them.
# Everything runs from the project's own virtualenv (.venv), created on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA_DIR ?= data/demo
DATABASE_URL ?=
SCALE ?= 1m
BACKEND ?= sqlite

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast test-lowest fuzz lint format typecheck check wheel \
        wheel-smoke bench bench-10m bench-history bench-relocation test-properties \
        docker-build migrate airflow-venv test-airflow clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# compileall: bytecode for the editable checkout too, as pip writes it for an installed wheel
# (PYTHONDONTWRITEBYTECODE would leave none; compiling the sources costs each command ~20 ms).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e . --group dev
	$(BIN)/python -m compileall -q src
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with the package (editable) and the dev tools

demo: $(STAMP) ## Run the whole job on generated sample data into SQLite (no network)
	$(BIN)/evergreen-etl demo --data-dir $(DATA_DIR)

test: $(STAMP) ## Run the test suite (PostgreSQL tests start their own server when binaries exist)
	$(BIN)/pytest

test-fast: $(STAMP) ## Run the tests without PostgreSQL and without the slow packaging tests
	$(BIN)/pytest -m "not postgres and not slow"

test-properties: $(STAMP) ## The any-order history property test with 500 examples on each backend
	EVERGREEN_PROPERTY_EXAMPLES=500 EVERGREEN_PROPERTY_EXAMPLES_POSTGRES=500 \
		$(BIN)/pytest tests/properties -q

test-lowest: ## The fast tests on the lowest dependency versions pyproject.toml allows (own venv)
	scripts/lowest-deps.sh

fuzz: $(STAMP) ## Fuzz the users and lookup readers with thousands of hostile inputs each (slow)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz -q

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Reformat the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy src

check: lint typecheck test ## lint, typecheck and test

wheel: $(STAMP) ## Build the sdist and wheel into dist/
	rm -rf dist
	$(BIN)/python -m build --outdir dist

wheel-smoke: wheel ## Install the wheel into a fresh virtualenv outside the repo and run the demo
	scripts/wheel-smoke.sh dist

bench: $(STAMP) ## Benchmarks at national scale: SCALE=100k|1m|10m BACKEND=sqlite|postgres|both
	$(BIN)/python benchmarks/run.py --scale $(SCALE) --backend $(BACKEND) --repeat 3
	$(BIN)/python benchmarks/history.py
	for backend in $(if $(filter both,$(BACKEND)),sqlite postgres,$(BACKEND)); do \
		$(BIN)/python benchmarks/relocation.py --users 1000000 --postcodes 2700000 \
			--snapshots 12 --backend $$backend || exit 1; \
	done

bench-10m: $(STAMP) ## Benchmarks at 1M then 10M users on both backends (hours; see benchmarks/README.md)
	$(BIN)/python benchmarks/run.py --scale 10m --backend both

bench-history: $(STAMP) ## Only the correcting-history benchmark (12 monthly snapshots, a late one)
	$(BIN)/python benchmarks/history.py

bench-relocation: $(STAMP) ## Only the lookup-version benchmark (1M users x 12 months): BACKEND=sqlite|postgres
	$(BIN)/python benchmarks/relocation.py --users 1000000 --postcodes 2700000 --snapshots 12 \
		--backend $(BACKEND)

docker-build: ## Build the container image (needs a Docker engine)
	docker build -t evergreen-etl:latest .

migrate: $(STAMP) ## Migrate the warehouse to the newest schema (DATABASE_URL or the default SQLite)
	$(BIN)/evergreen-etl db upgrade --data-dir $(DATA_DIR) $(if $(DATABASE_URL),--database-url $(DATABASE_URL))

airflow-venv: ## Create the cached Airflow virtualenv used by the DAG test
	scripts/airflow-venv.sh

test-airflow: $(STAMP) ## Run the DAG in real Apache Airflow (own cached venv, see scripts/airflow-venv.sh)
	EVERGREEN_AIRFLOW_PYTHON="$$(scripts/airflow-venv.sh)/bin/python" $(BIN)/pytest tests/delivery/test_airflow_dag.py

clean: ## Remove build products, caches and the demo data (not .venv)
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov data/demo
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

# What the README and CI call. Each target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
# Nothing we run may call out: Ray, MLflow and others send telemetry by default.
export RAY_USAGE_STATS_ENABLED := 0
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1

.PHONY: install demo test test-fast lint bench clean browser lock audit coverage-html
# The web UI's tests: Debian's Chromium (never a browser download) and axe-core from npm.
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1

# uv installs the environment (about 15 s where pip takes about 80); pip stays in it.
# --compile-bytecode everywhere: with PYTHONDONTWRITEBYTECODE set (as here) nothing caches
# .pyc files later, and every process would compile what it imports (1.2 s more per CLI call).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv>=0.5"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard demo

# The whole suite, including PostgreSQL (skipped with a reason when it is not reachable,
# an error when SHIPYARD_TEST_POSTGRES=required as in CI). pytest exits 5 if nothing ran.
$(AXE):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION)

browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The MLflow compatibility suite drives the real MLflow client (and huggingface_hub, which
# loads our model cards), kept out of Shipyard's own environment (about 1 GiB).
MLFLOW_VERSION := 3.17.2
HF_HUB_VERSION := 2.4.0
MLFLOW_VENV := .venv-mlflow
# uv (a dev dependency) builds it in about 15 s where pip takes about 100.
$(MLFLOW_VENV)/.installed: $(STAMP)
	$(BIN)/uv venv --clear --quiet --python $(PYTHON) $(MLFLOW_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(MLFLOW_VENV)/bin/python \
	  "mlflow==$(MLFLOW_VERSION)" "huggingface_hub==$(HF_HUB_VERSION)"
	touch $@

# S3 in tests: moto's standalone server, in its own environment (its server extra pins
# packages Shipyard's environment must not be held to); tests start it on 127.0.0.1.
MOTO_VERSION := 5.1.22
MOTO_VENV := .venv-moto
$(MOTO_VENV)/.installed: $(STAMP)
	$(BIN)/uv venv --clear --quiet --python $(PYTHON) $(MOTO_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(MOTO_VENV)/bin/python "moto[server]==$(MOTO_VERSION)"
	touch $@

# Federated learning: Flower pins FastAPI, Starlette, Typer, Rich, cryptography and others
# below what Shipyard's own environment has, so `pip install shipyard[federated]` gives
# those releases; this environment is that install, and tests/federated runs in it.
FEDERATED_VENV := .venv-federated
$(FEDERATED_VENV)/.installed: pyproject.toml $(STAMP)
	$(BIN)/uv venv --clear --quiet --python $(PYTHON) $(FEDERATED_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(FEDERATED_VENV)/bin/python -e '.[federated]' \
	  "pytest==9.0.3" "pytest-timeout==2.4.0" "pytest-cov==7.1.0" "psycopg[binary]>=3.1.18"
	touch $@

# Coverage of src/shipyard is measured over both runs (the federated one appends) and held
# to the floor in [tool.coverage.report] fail_under; `make coverage-html` shows the lines.
test: $(STAMP) $(AXE) browser $(MLFLOW_VENV)/.installed $(MOTO_VENV)/.installed $(FEDERATED_VENV)/.installed
	@rm -f .coverage .coverage.*; \
	$(BIN)/pytest -n 2 --dist loadgroup -q -p no:cacheprovider --durations=15 \
	  --cov=shipyard --cov-report= --cov-fail-under=0; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "FAIL: no tests ran" >&2; exit 1; fi; \
	FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 $(FEDERATED_VENV)/bin/pytest -q \
	  -p no:cacheprovider --cov=shipyard --cov-append --cov-report=term:skip-covered \
	  tests/federated; frc=$$?; \
	if [ $$frc -eq 5 ]; then echo "FAIL: no federated tests ran" >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$frc

coverage-html: $(STAMP)
	$(BIN)/coverage html && echo "open htmlcov/index.html"

# The runtime dependencies, pinned (what a production install would use), and their audit.
# pip-audit needs PyPI's JSON API or OSV; where neither is reachable it says so and fails.
LOCK_EXTRAS := --extra postgres --extra s3 --extra onnx --extra automl
requirements.lock: pyproject.toml $(STAMP)
	$(BIN)/uv pip compile --quiet --python-version 3.11 $(LOCK_EXTRAS) pyproject.toml -o $@

lock: requirements.lock

audit: requirements.lock
	$(BIN)/uv tool run --quiet pip-audit==2.10.1 --strict --disable-pip --no-deps -r requirements.lock

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow" tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src
	$(BIN)/mypy
	$(BIN)/lint-imports

# Benchmarks run beside MLflow and Prefect, which live in their own environment (about 1 GiB);
# MLflow is the release the compatibility suite drives, so its figures compare like with like.
$(BENCH_VENV)/.installed: $(STAMP)
	$(BIN)/uv venv --clear --quiet --python $(PYTHON) $(BENCH_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BENCH_VENV)/bin/python -e '.[bench,postgres,ray,onnx]' \
	  "mlflow==$(MLFLOW_VERSION)"
	touch $@

# Evidently 0.7 needs pandas < 3: it gets its own environment, used by bench/drift.py only.
.venv-evidently/.installed:
	$(PYTHON) -m venv .venv-evidently
	.venv-evidently/bin/pip install --quiet --upgrade pip
	.venv-evidently/bin/pip install --quiet "evidently>=0.7,<0.8" "pandas<3" pyarrow
	touch $@

# FLAML (the AutoML a user would otherwise pick) lives in its own environment; bench/automl.py
# runs it from there on the same splits.
FLAML_VERSION := 2.8.0
.venv-flaml/.installed: $(STAMP)
	$(BIN)/uv venv --clear --quiet --python $(PYTHON) .venv-flaml
	$(BIN)/uv pip install --quiet --compile-bytecode --python .venv-flaml/bin/python "flaml[automl]==$(FLAML_VERSION)" pyarrow
	touch $@

bench: $(BENCH_VENV)/.installed .venv-evidently/.installed .venv-flaml/.installed
	cd bench && ../$(BENCH_VENV)/bin/python tracking_ingest.py
	cd bench && ../$(BENCH_VENV)/bin/python mlflow_client.py
	cd bench && ../$(BENCH_VENV)/bin/python search_runs.py
	cd bench && ../$(BENCH_VENV)/bin/python pipeline_overhead.py
	cd bench && ../$(BENCH_VENV)/bin/python serving.py
	cd bench && ../$(BENCH_VENV)/bin/python gates.py
	cd bench && ../$(BENCH_VENV)/bin/python drift.py
	cd bench && ../$(BENCH_VENV)/bin/python overload.py
	cd bench && ../$(BENCH_VENV)/bin/python ui.py
	cd bench && ../$(BIN)/python scale.py
	cd bench && ../$(BIN)/python spec.py
	cd bench && ../$(BIN)/python automl.py
	cd bench && ../$(BIN)/python edge.py

clean:
	rm -rf .coverage htmlcov $(VENV) $(BENCH_VENV) $(MLFLOW_VENV) $(MOTO_VENV) $(FEDERATED_VENV) .venv-evidently .venv-flaml .venv-edge .shipyard .pytest_cache .mypy_cache .ruff_cache

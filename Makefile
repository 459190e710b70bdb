# Every target bootstraps itself: a fresh clone needs only python3 (>=3.10) with venv and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ML_ASSETS_HOME ?= $(CURDIR)
export DAGSTER_HOME   ?= $(CURDIR)/.dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/data/mlflow/mlflow.db

.PHONY: demo demo-experiment cluster cluster-down cluster-status test test-fast ui mlflow-ui mlflow-server celery-workers serve exporter rollback install bench bench-drift promtool clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml constraints.txt examples/ml_examples/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' -e examples/ml_examples
	touch $@

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

# ML_ASSETS_PROFILE=cluster: the story on `make cluster`'s topology, driven by its daemon (.cluster/env says where).
CLUSTER_DIR := $(CURDIR)/.cluster
demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## simulate weeks of data and run the pipeline through Dagster
ifeq ($(ML_ASSETS_PROFILE),cluster)
	@test -f $(CLUSTER_DIR)/env || { echo "no cluster here: start it with \`make cluster\`" >&2; exit 2; }
	set -a && . $(CLUSTER_DIR)/env && set +a && $(BIN)/python -m ml_examples.churn.cluster_demo
else
	$(BIN)/python -m ml_examples.churn.demo
endif

# Its own data, MLflow store and Dagster home (not the main demo's): `DAGSTER_HOME=$(EXPERIMENT_HOME) make ui` shows it.
EXPERIMENT_DATA := $(CURDIR)/data/experiment_demo
EXPERIMENT_HOME := $(CURDIR)/.dagster_home_experiment
demo-experiment: $(STAMP)  ## one online experiment from start to decision (a better challenger; EFFECT=-1 a worse one)
	rm -rf $(EXPERIMENT_DATA) $(EXPERIMENT_HOME)  # a fresh world each time: the story starts with no model
	mkdir -p $(EXPERIMENT_DATA)/mlflow
	ML_ASSETS_DATA_DIR=$(EXPERIMENT_DATA) DAGSTER_HOME=$(EXPERIMENT_HOME) \
	  MLFLOW_TRACKING_URI=sqlite:///$(EXPERIMENT_DATA)/mlflow/mlflow.db \
	  $(BIN)/python -m ml_examples.churn.experiment_demo --effect $(or $(EFFECT),1.0)

test: $(STAMP) promtool  ## lint, then the whole suite (alert rules included, through promtool)
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile -q --durations=20  # lists the slowest tests: where the time goes

test-fast: $(STAMP) promtool  ## everything but the slow end-to-end tests (real daemon, Postgres, MLflow server, closed loops)
	$(BIN)/pytest -n 2 --dist loadfile -q -m "not slow and not e2e"

promtool:  ## Prometheus' rule checker, from Debian's prometheus package, when missing
	@command -v promtool >/dev/null || { echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get install -y -q prometheus >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q prometheus >/dev/null; }; }

# One machine, the production engines: Dagster on PostgreSQL (webserver + daemon), Celery workers on
# RabbitMQ, an MLflow server on PostgreSQL with artifacts on a local S3 server. State and logs in .cluster/.
cluster: $(STAMP)  ## start the multi-process topology (ports 3000, 5000, 9000) and print where everything is
	$(BIN)/python -m ml_assets.ops.cluster up --folder $(CLUSTER_DIR)

cluster-down: $(STAMP)  ## stop exactly what `make cluster` started
	$(BIN)/python -m ml_assets.ops.cluster down --folder $(CLUSTER_DIR)

cluster-status: $(STAMP)  ## what `make cluster` runs, and where
	$(BIN)/python -m ml_assets.ops.cluster status --folder $(CLUSTER_DIR)

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## Dagster UI + daemon (sensors, schedules) on 127.0.0.1:3000
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# An MLflow tracking server on PostgreSQL that serves the artifacts itself: point the platform at it
# with MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (clients then never need the store's files).
MLFLOW_BACKEND_URI ?= postgresql+psycopg2://postgres@127.0.0.1:5432/ml_assets_mlflow
MLFLOW_ARTIFACTS_DESTINATION ?= $(CURDIR)/data/mlflow-server/artifacts
mlflow-server: $(STAMP)  ## MLflow tracking server on PostgreSQL with served artifacts on 127.0.0.1:5000
	@$(BIN)/python -c "import sys, sqlalchemy as sa; u = sa.make_url(sys.argv[1]); e = sa.create_engine(u.set(database='postgres'), isolation_level='AUTOCOMMIT'); c = e.connect(); c.execute(sa.text(f'CREATE DATABASE \"{u.database}\"')) if not c.execute(sa.text('SELECT 1 FROM pg_database WHERE datname = :d'), {'d': u.database}).first() else None" "$(MLFLOW_BACKEND_URI)"
	mkdir -p $(MLFLOW_ARTIFACTS_DESTINATION)
	$(BIN)/mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_BACKEND_URI) \
	  --serve-artifacts --artifacts-destination $(MLFLOW_ARTIFACTS_DESTINATION)

# Celery workers for the training job run with ML_ASSETS_EXECUTOR=celery: one worker node with
# $(CELERY_CONCURRENCY) processes, each running one step at a time (a model family's search, ...).
# Start it on every machine that should train, with the code location installed, the same
# DAGSTER_HOME instance and the same storage reachable. `celery` is started by name: the venv goes first on PATH.
CELERY_CONCURRENCY ?= 2
celery-workers: export ML_ASSETS_EXECUTOR ?= celery
celery-workers: export ML_ASSETS_CELERY_BROKER ?= pyamqp://guest:guest@127.0.0.1:5672//
celery-workers: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## Dagster Celery workers for the training job (foreground; Ctrl-C stops)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml \
	  -- --concurrency=$(CELERY_CONCURRENCY)

mlflow-ui: $(STAMP)  ## MLflow UI over the embedded store on 127.0.0.1:5000
	mkdir -p data/mlflow
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_TRACKING_URI)

PROBLEM ?= churn
serve: $(STAMP)  ## the scoring service for $(PROBLEM)_model@champion on 127.0.0.1:8000 (docs at /docs)
	$(BIN)/ml-assets serve --problem $(PROBLEM) --host 127.0.0.1 --port 8000

exporter: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## pipeline metrics for Prometheus on 127.0.0.1:9108 (deploy/prometheus)
	$(BIN)/ml-assets exporter --host 127.0.0.1 --port 9108

rollback: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## move $(PROBLEM)_model@champion back to @previous (a Dagster run)
	$(BIN)/ml-assets rollback --problem $(PROBLEM) --reason "$(or $(REASON),manual rollback via make)"

bench: $(STAMP)  ## benchmarks; results go to BENCHMARKS.md by hand, with the command
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/batch_scoring.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/search.py

.venv-evidently/.installed: benchmarks/drift/requirements-evidently.txt
	$(PYTHON) -m venv .venv-evidently
	.venv-evidently/bin/pip install --quiet -r $<
	touch $@

bench-drift: $(STAMP) .venv-evidently/.installed  ## drift: ml_assets vs Evidently (its own venv: pandas < 3)
	$(BIN)/python benchmarks/drift/run.py

clean:
	rm -rf data .dagster_home .dagster_home_experiment

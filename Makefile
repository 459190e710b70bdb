# Every target bootstraps itself: a fresh clone needs only python3 (>=3.10) with venv and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ML_ASSETS_HOME ?= $(CURDIR)
export DAGSTER_HOME   ?= $(CURDIR)/.dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/data/mlflow/mlflow.db

.PHONY: demo test ui mlflow-ui serve rollback install bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## simulate weeks of data and run the pipeline through Dagster
	$(BIN)/python -m ml_assets.demo

test: $(STAMP)  ## the whole suite
	$(BIN)/pytest -n 2 --dist loadfile -q

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## Dagster UI + daemon (sensors, schedules) on 127.0.0.1:3000
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

mlflow-ui: $(STAMP)  ## MLflow UI over the embedded store on 127.0.0.1:5000
	mkdir -p data/mlflow
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_TRACKING_URI)

serve: $(STAMP)  ## the scoring service for churn_model@champion on 127.0.0.1:8000 (docs at /docs)
	$(BIN)/ml-assets serve --host 127.0.0.1 --port 8000

rollback: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## move churn_model@champion back to @previous (a Dagster run)
	$(BIN)/ml-assets rollback --reason "$(or $(REASON),manual rollback via make)"

bench: $(STAMP)  ## benchmarks; results go to BENCHMARKS.md by hand, with the command
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/batch_scoring.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf data .dagster_home

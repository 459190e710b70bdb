"""The model group through Dagster, with a real MLflow store and registry."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from ml_examples.churn.problem import CHURN
from ml_examples.churn.simulation import WorldConfig, write_world
from mlflow.tracking import MlflowClient

from ml_assets.core.lineage import frame_hash
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.testing.runner import tick_sensor
from ml_assets_tests.conftest import START, project_env

QUICK = {"ops": {"churn__candidate_model": {"config": {"search_iterations": 2}}}}


def _mlflow_runs(uri: str, dagster_run_id: str):
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, filter_string=f"tags.dagster_run_id = '{dagster_run_id}'")
    children = [r for p in parents for r in client.search_runs(
        experiments, filter_string=f"tags.mlflow.parentRunId = '{p.info.run_id}'")]
    return parents, children


def _ingest_days(defs, instance, landing, days: int) -> None:
    write_world(WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3), days, landing)
    for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
        results, _, _ = tick_sensor(defs, sensor, instance, ticks=2)
        assert results and all(r.success for r in results)


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_template) -> MlflowResource:
    """The training's own store, configured on the resource only: the environment (MLFLOW_TRACKING_URI
    of the session's store) and MLflow's global default point elsewhere, and must stay untouched."""
    root = tmp_path_factory.mktemp("trained_mlflow")
    shutil.copyfile(mlflow_template, root / "mlflow.db")
    return MlflowResource(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment_name="tests",
                          artifact_location=(root / "artifacts").as_uri())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_store, store):
    """12 days ingested through the sensors, then one training run: shared by the read-only tests."""
    from ml_examples.problems import example_problems

    from ml_assets.definitions import build_definitions
    from ml_assets.io import JsonIOManager, LandingZoneResource, ParquetIOManager

    root = tmp_path_factory.mktemp("trained")
    defs = build_definitions(example_problems(), {
        "io_manager": ParquetIOManager(base_path=str(root / "warehouse")),
        "json_io_manager": JsonIOManager(base_path=str(root / "warehouse")),
        "landing": LandingZoneResource(landing_dir=str(root / "landing"), archive_dir=str(root / "raw")),
        "mlflow": store})
    with dg.instance_for_test() as instance:
        _ingest_days(defs, instance, root / "landing", days=12)
        result = defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance, run_config=QUICK)
        assert result.success
        yield result


def test_one_dagster_run_is_one_finished_mlflow_run_with_a_child_per_candidate(trained, store):
    parents, children = _mlflow_runs(store.tracking_uri, trained.run_id)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(c.data.params["candidate"] for c in children) == [
        "hist_gradient_boosting", "logistic_regression", "random_forest"]
    assert "test_roc_auc" in parents[0].data.metrics  # evaluation logged into the same run
    assert [c.info.status for c in children] == ["FINISHED"] * 3
    artifacts = {a.path for a in MlflowClient(store.tracking_uri).list_artifacts(parents[0].info.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/slices.csv", "evaluation/roc.png"} <= artifacts


def test_tracking_goes_only_to_the_resources_store(trained, store, mlflow_store):
    """Nothing reached the store the environment names, MLflow's global state stays unset, and no
    MLflow file appeared in the working directory."""
    assert _mlflow_runs(store.tracking_uri, trained.run_id)[0]
    assert _mlflow_runs(mlflow_store, trained.run_id) == ([], [])
    assert not MlflowClient(mlflow_store).search_registered_models("name = 'churn_model'") or \
        trained.run_id not in {v.tags.get("dagster_run_id") for v in MlflowClient(mlflow_store).search_model_versions(
            "name = 'churn_model'")}
    assert mlflow.active_run() is None
    assert not {"mlflow.db", "mlruns"} & {p.name for p in Path.cwd().iterdir()}


def test_each_training_step_records_its_time_cpu_and_peak_memory(trained, store):
    """Shown in the UI (materialization metadata) and logged to the training's MLflow run."""
    mats = {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
            for e in trained.get_asset_materialization_events()}
    metrics = _mlflow_runs(store.tracking_uri, trained.run_id)[0][0].data.metrics
    for step in ("candidate_model", "evaluation"):
        usage = {k: mats[step][f"step_{k}"].value for k in ("seconds", "cpu_seconds", "peak_memory_mb")}
        assert usage["seconds"] > 0 and usage["cpu_seconds"] > 0
        assert 50 < usage["peak_memory_mb"] < 16_000  # a Python process with scikit-learn, in MB
        assert {k: metrics[f"{step}_{k}"] for k in usage} == pytest.approx(usage)
    # tuning three model families costs more CPU than scoring one on the test split
    assert mats["candidate_model"]["step_cpu_seconds"].value > mats["evaluation"]["step_cpu_seconds"].value


def test_each_candidate_family_is_its_own_step_then_one_step_registers(trained):
    """So an executor with workers (Celery) can run the families on different processes."""
    steps = {e.step_key for e in trained.get_step_success_events()}
    families = {f"churn__candidate_model.churn__search_{c.name}" for c in CHURN.training.candidates}
    assert {*families, "churn__candidate_model.churn__register_winner"} <= steps
    assert not {s for s in steps if s.startswith("churn__candidate_model.")} - families - {
        "churn__candidate_model.churn__register_winner"}


def test_each_child_run_logs_the_days_of_its_cv_folds(trained, store):
    """9 labelled days, test 3 + validation 3: the 3 train days make 2 time folds (of the spec's 3)."""
    _, children = _mlflow_runs(store.tracking_uri, trained.run_id)
    for child in children:
        folds = {k: v for k, v in child.data.params.items() if k.startswith("fold")}
        assert folds == {"fold0.fit_days": "2026-01-01..2026-01-01", "fold0.validation_days": "2026-01-02..2026-01-02",
                         "fold1.fit_days": "2026-01-01..2026-01-02", "fold1.validation_days": "2026-01-03..2026-01-03"}
        history = store.client().get_metric_history(child.info.run_id, "cv_fold_score")
        assert [m.step for m in history] == [0, 1] and np.mean([m.value for m in history]) == \
            pytest.approx(child.data.metrics["cv_score"])
    candidate = next(e.event_specific_data.materialization for e in trained.get_asset_materialization_events()
                     if e.event_specific_data.materialization.asset_key == dg.AssetKey(["churn", "candidate_model"]))
    assert candidate.metadata["cv_folds"].value[0].startswith("fit 2026-01-01..2026-01-01 (")


def test_the_candidate_is_a_registered_version_with_lineage(trained, store):
    ref = trained.output_for_node("churn__candidate_model")
    assert ref["uri"] == f"models:/churn_model/{ref['version']}" and set(ref) >= {"run_id", "best_candidate"}
    version = store.client().get_model_version("churn_model", ref["version"])
    training_set = trained.output_for_node("churn__training_set")
    assert version.tags["dagster_run_id"] == trained.run_id
    assert version.tags["data_hash"] == frame_hash(training_set)
    assert version.tags["input_days"].split(",") == [f"2026-01-0{d}" for d in range(1, 10)]
    assert {"git_sha", "package_version", "problem", "seed"} <= set(version.tags)
    assert version.run_id == ref["run_id"]
    loaded = store.load_version("churn_model", ref["version"])
    features = training_set.head(4)[CHURN.feature_columns]
    assert loaded.pipeline.predict_proba(features).shape == (4, 2)
    assert loaded.example is not None and list(loaded.example.columns) == CHURN.feature_columns


def test_training_set_and_evaluation_metadata_for_the_ui(trained):
    mats = {e.event_specific_data.materialization.asset_key.to_user_string(): e.event_specific_data.materialization
            for e in trained.get_asset_materialization_events()}
    split = mats["churn/training_set"].metadata
    training_set = trained.output_for_node("churn__training_set")
    assert split["rows_test"].value == (training_set.split == "test").sum() > 0.98 * 3 * 200
    assert "class_balance_train" in split
    assert split["dates_test"].value == "2026-01-07 .. 2026-01-09"
    assert split["input_days"].value == [f"2026-01-0{d}" for d in range(1, 10)]
    assert split["window"].value == "60 calendar days up to 2026-01-09"
    evaluation = mats["churn/evaluation"].metadata
    assert 0.5 < evaluation["roc_auc"].value <= 1
    assert evaluation["plots"].value.count("data:image/png;base64,") == 5
    assert "contract" in evaluation["slices"].value


def test_a_failed_training_run_leaves_a_failed_mlflow_run(defs, instance, landing, mlflow_store):
    cursor = _tick_failure_sensor(defs, instance)  # the first tick only sets the cursor
    _ingest_days(defs, instance, landing, days=5)  # 2 labelled days: too few to split
    result = defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "training needs at least 7 labelled days" in failure.event_specific_data.error.to_string()
    assert _tick_failure_sensor(defs, instance, cursor) is None  # the tick saw the training failure
    parents, _ = _mlflow_runs(mlflow_store, result.run_id)  # failed before any MLflow step: recorded anyway
    assert [p.info.status for p in parents] == ["FAILED"]
    assert parents[0].data.tags["failure"].startswith("churn__training_set: ValueError: training needs at least 7")


def test_a_step_resumes_the_runs_mlflow_run_and_closes_it_with_its_outcome(tmp_path, mlflow_template):
    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")
    store = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=tmp_path.as_uri())
    with store.training_run("dagster-run-1", "train_job") as first:
        first.log_metrics({"a": 1.0})
    with pytest.raises(ValueError), store.training_run("dagster-run-1", "train_job") as second:
        second.log_metrics({"b": 2.0})
        raise ValueError("the second step failed")
    with pytest.raises(KeyboardInterrupt), store.training_run("dagster-run-2", "train_job"):
        raise KeyboardInterrupt
    parents, _ = _mlflow_runs(store.tracking_uri, "dagster-run-1")
    assert second.run_id == first.run_id and len(parents) == 1
    assert parents[0].info.status == "FAILED" and parents[0].data.metrics == {"a": 1.0, "b": 2.0}
    assert [p.info.status for p in _mlflow_runs(store.tracking_uri, "dagster-run-2")[0]] == ["KILLED"]


def test_training_before_any_data_says_what_to_do(defs, instance):
    result = defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "no feature rows to train on: materialize the features" in failure.event_specific_data.error.to_string()


def _tick_failure_sensor(defs, instance, cursor=None):
    """One real tick of the failure sensor (it reads run failures from the instance)."""
    sensor = defs.resolve_sensor_def("mlflow_run_failure_sensor")
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, sensor_name=sensor.name,
                                                        cursor=cursor, resources={"mlflow": defs.resources["mlflow"]}))
    return data.cursor if cursor is None else data.skip_message


@pytest.mark.parametrize("problem, metric", [("wine", "f1_macro"), ("diabetes", "rmse")])
def test_bundled_problems_run_through_the_same_factory(defs, instance, problem, metric):
    dataset = dg.AssetKey([problem, "dataset"])
    assert dg.materialize([a for a in defs.assets if dataset in getattr(a, "keys", ())], instance=instance,
                          resources=defs.resources, selection=[dataset]).success
    result = defs.resolve_job_def(f"train_{problem}_job").execute_in_process(instance=instance)
    evaluation = result.output_for_node(f"{problem}__evaluation")
    assert result.success and metric in evaluation["metrics"]
    assert isinstance(pd.DataFrame(evaluation["slices"]), pd.DataFrame)


def test_train_job_of_a_static_problem_on_a_fresh_instance(tmp_path):
    """`dagster job execute -j train_wine_job` on a new DAGSTER_HOME and a new MLflow store: the job
    loads its own bundled data (it failed with FileNotFoundError when `dataset` was not in it)."""
    with project_env(tmp_path / "project") as uri:
        done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m",
                               "ml_examples.definitions", "-j", "train_wine_job"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with dg.DagsterInstance.get() as instance:
            [run] = instance.get_runs()
            assert run.job_name == "train_wine_job" and run.status == dg.DagsterRunStatus.SUCCESS
            records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            produced = {r.event_log_entry.dagster_event.asset_key for r in records.records}
        assert {dg.AssetKey(["wine", k]) for k in ("dataset", "training_set", "candidate_model", "evaluation",
                                                   "champion")} <= produced
        assert str(MlflowClient(uri).get_model_version_by_alias("wine_model", "champion").version) == "1"
    assert not (tmp_path / "mlflow.db").exists()  # nothing written outside the project


def _with_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(alcohol_per_acid=frame["alcohol"] / frame["malic_acid"])


def wine_ratio():
    """WINE with a derived feature (a function returning the spec: a problem reference may name one)."""
    from ml_examples.bundled import WINE

    schema = WINE.data.features_model.add_columns({"alcohol_per_acid": pa.Column(float)})
    return WINE.evolve(ref="ml_assets_tests.test_models:wine_ratio", name="wine_ratio", build_features=_with_ratio,
                       features_model=schema, numeric_features=(*WINE.data.numeric_features, "alcohol_per_acid"))


def test_static_problems_get_their_features_built(resources, instance):
    """build_features was silently skipped for static problems: a derived feature never existed."""
    from ml_assets.definitions import build_definitions

    defs = build_definitions(("ml_assets_tests.test_models:wine_ratio",), resources)
    keys = [dg.AssetKey(["wine_ratio", "dataset"]), dg.AssetKey(["wine_ratio", "training_set"])]
    result = dg.materialize([a for a in defs.assets if set(getattr(a, "keys", ())) & set(keys)], instance=instance,
                            resources=defs.resources, selection=keys)
    frame = result.asset_value(keys[1])
    assert frame["alcohol_per_acid"].tolist() == (frame["alcohol"] / frame["malic_acid"]).tolist()

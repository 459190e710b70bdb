"""Gate -> champion -> batch scoring -> rollback through Dagster, on an on-disk instance and a real
MLflow registry. The project is laid out as a fresh clone after `make demo` (data/, .dagster_home/,
.env); the CLI commands run as a user types them: cwd = the project, NOTHING exported (no
MLFLOW_TRACKING_URI, no DAGSTER_HOME, no ML_ASSETS_*), so they must find the project's stores
themselves. The tests run in order on one scenario (`make test` distributes whole files: --dist loadfile)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from ml_examples.churn.simulation import WorldConfig, write_world
from ml_examples.problems import example_problems

from ml_assets.mlflow.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    alias_version,
    client,
    load_version,
)
from ml_assets.ops.location import ensure_dagster_home
from ml_assets.testing.runner import tick_sensor
from ml_assets_tests.conftest import START, project_env
from ml_assets_tests.processes import scrape_until
from ml_assets_tests.serving.conftest import free_port

NAME = "churn_model"
QUICK = {"ops": {"churn__candidate_model": {"config": {"search_iterations": 1}}}}
GATE = {"metric_floor", "no_regression", "prediction_sanity", "servable"}


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_template):
    root = tmp_path_factory.mktemp("deployment")
    shutil.copyfile(Path(__file__).resolve().parents[1] / "pyproject.toml", root / "pyproject.toml")  # a checkout
    with project_env(root, mlflow_template):
        os.environ.pop("DAGSTER_HOME")
        ensure_dagster_home()  # as `make demo` does: the project's .dagster_home, recorded in .env
        from ml_assets.definitions import build_definitions

        defs = build_definitions(example_problems())  # the embedded defaults, resolved from the environment above
        write_world(WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3), 12,
                    root / "data" / "landing")
        with dg.DagsterInstance.get() as instance:
            for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
                tick_sensor(defs, sensor, instance, ticks=2)
            yield {"defs": defs, "instance": instance, "root": root}


def _train(env, **kwargs) -> dg.ExecuteInProcessResult:
    job = env["defs"].resolve_job_def("train_churn_job")
    return job.execute_in_process(instance=env["instance"], run_config=QUICK, raise_on_error=False, **kwargs)


def _checks(result) -> dict[str, object]:
    return {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _champion_materializations(result) -> list:
    return [e.event_specific_data.materialization for e in result.get_asset_materialization_events()
            if e.event_specific_data.materialization.asset_key == dg.AssetKey(["churn", "champion"])]


def test_a_first_candidate_that_passes_every_gate_becomes_champion(env):
    result = _train(env)
    assert result.success
    checks, version = _checks(result), result.output_for_node("churn__candidate_model")["version"]
    assert set(checks) == GATE and all(c.passed for c in checks.values())
    assert "no champion yet" in checks["no_regression"].description
    assert "fresh process" in checks["servable"].description
    assert alias_version(client(), NAME, CHAMPION) == version and alias_version(client(), NAME, PREVIOUS) is None
    meta = _champion_materializations(result)[0].metadata
    assert meta["version"].value == version and meta["action"].value == "promote"
    assert meta["mlflow_model_version"].value.endswith(f"/#/models/{NAME}/versions/{version}")


def test_a_label_shuffled_candidate_is_never_promoted(env):
    champion = alias_version(client(), NAME, CHAMPION)
    path = env["root"] / "data" / "warehouse" / "churn" / "training_set.parquet"
    frame = pd.read_parquet(path)
    fit = frame["split"] != "test"  # train on noise; the test split keeps the truth
    frame.loc[fit, "churned"] = frame.loc[fit, "churned"].sample(frac=1, random_state=1).to_numpy()
    frame.to_parquet(path)
    keys = [dg.AssetKey(["churn", k]) for k in ("candidate_model", "evaluation", "champion")]
    result = _train(env, asset_selection=keys)
    checks = _checks(result)
    assert not checks["metric_floor"].passed and "< floor" in checks["metric_floor"].description
    assert not _champion_materializations(result)  # the blocking check stopped the promotion
    assert alias_version(client(), NAME, CHAMPION) == champion


def test_materializing_the_champion_alone_cannot_skip_a_failed_gate(env):
    champion = alias_version(client(), NAME, CHAMPION)
    result = _train(env, asset_selection=[dg.AssetKey(["churn", "champion"])])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    assert "did not pass the gate" in failure.error.message
    assert "metric_floor" in failure.user_failure_data.metadata["failures"].value
    assert alias_version(client(), NAME, CHAMPION) == champion


def test_a_good_candidate_replaces_the_champion_with_deltas_vs_it(env):
    before = alias_version(client(), NAME, CHAMPION)
    result = _train(env)  # rebuilds the real training set
    assert result.success
    checks = _checks(result)
    assert checks["no_regression"].passed and f"champion v{before}" in checks["no_regression"].description
    after = alias_version(client(), NAME, CHAMPION)
    assert after != before and alias_version(client(), NAME, PREVIOUS) == before
    meta = _champion_materializations(result)[0].metadata
    assert meta["previous_version"].value == before and "delta_roc_auc" in meta


def test_batch_predictions_carry_the_champion_version(env):
    champion = alias_version(client(), NAME, CHAMPION)
    job = env["defs"].resolve_job_def("score_churn_job")
    result = job.execute_in_process(instance=env["instance"], partition_key="2026-01-12")
    frame = result.output_for_node("churn__predictions")
    features = pd.read_parquet(env["root"] / "data" / "warehouse" / "churn" / "features" / "2026-01-12.parquet")
    assert len(frame) == len(features) and set(frame["model_version"]) == {champion}
    assert frame["score"].between(0, 1).all() and set(frame["label"]) <= {0, 1}
    pipeline = load_version(NAME, champion).pipeline
    assert frame["score"].to_numpy() == pytest.approx(pipeline.predict_proba(features)[:, 1], rel=1e-12)


def _bare_environment() -> dict[str, str]:
    """The user's shell: nothing of the platform's, Dagster's or MLflow's configuration exported."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ML_ASSETS_", "MLFLOW_", "DAGSTER_")) and k != "PYTEST_CURRENT_TEST"}


def _run(command: list[str], env, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=env["root"],
                          env=_bare_environment())


def _dagster(env, *args: str) -> subprocess.CompletedProcess:
    return _run([str(Path(sys.executable).parent / "dagster"), *args, "-m", "ml_examples.definitions"], env)


def _cli(env, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "ml_assets.ops.cli", *args], env)


def test_batch_predictions_from_the_cli_with_nothing_exported(env):
    """README: `dagster asset materialize … --select churn/predictions --partition <day>` (failed on
    the old main with "Registered Model with name=churn_model not found" and a stray ./mlflow.db)."""
    champion = alias_version(client(), NAME, CHAMPION)
    done = _dagster(env, "asset", "materialize", "--select", "churn/predictions", "--partition", "2026-01-11")
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_parquet(env["root"] / "data" / "warehouse" / "churn" / "predictions" / "2026-01-11.parquet")
    assert set(frame["model_version"]) == {champion} and len(frame) > 150
    event = env["instance"].get_latest_materialization_event(dg.AssetKey(["churn", "predictions"]))
    assert event.asset_materialization.partition == "2026-01-11"  # recorded in the project's instance


def test_the_everyday_ingestion_commands_with_nothing_exported(env):
    """README "Everyday commands": a day materialized, a backfill queued, a landing sensor previewed,
    each from the project folder with no variable exported."""
    day = _dagster(env, "asset", "materialize", "--select", "raw_customers,validated_customers,quarantined_customers",
                   "--partition", "2026-01-05")
    assert day.returncode == 0, day.stderr[-3000:]
    backfill = _dagster(env, "job", "backfill", "-j", "ingest_customers_job", "--from", "2026-01-01", "--to",
                        "2026-01-03", "--noprompt")
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    [requested] = env["instance"].get_backfills()  # in the project's instance
    runs = env["instance"].get_runs(dg.RunsFilter(tags={"dagster/backfill": requested.backfill_id}))
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    preview = _dagster(env, "sensor", "preview", "customers_landing_sensor")
    assert preview.returncode == 0 and "customers_2026-01-01.csv" in preview.stdout + preview.stderr, preview.stdout


def test_status_and_the_retrain_sensor_preview_with_nothing_exported(env):
    c = client()
    done = _cli(env, "status", "--problem", "churn")
    assert done.returncode == 0, done.stderr[-3000:]
    expected = [f"{NAME}@{alias}: " + (f"v{v}" if (v := alias_version(c, NAME, alias)) else "-")
                for alias in (CHAMPION, PREVIOUS, CHALLENGER)]
    assert done.stdout.splitlines() == expected and expected[0] != f"{NAME}@{CHAMPION}: -"
    drift = _dagster(env, "asset", "materialize", "--select", "churn/drift_report", "--partition", "2026-01-11")
    assert drift.returncode == 0, drift.stderr[-3000:]  # the champion's reference profile, from the registry
    preview = _dagster(env, "sensor", "preview", "churn_drift_retrain_sensor")
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "2026-01-11" in preview.stdout, preview.stdout  # it read the drift report in the project's instance


def test_an_experiment_is_started_shown_and_stopped_from_the_cli(env):
    """`ml-assets experiment start|status|stop`: each action a Dagster run with a materialization of
    churn/experiment; the champion never moves."""
    from ml_assets.mlflow import experiments

    champion = alias_version(client(), NAME, CHAMPION)
    other = next(str(v.version) for v in client().search_model_versions(f"name = '{NAME}'") if str(v.version) != champion)
    refused = _cli(env, "experiment", "start", "--problem", "churn")  # no @challenger and no --version
    assert refused.returncode == 2 and "has no @challenger; pass --version N" in refused.stderr
    started = _cli(env, "experiment", "start", "--problem", "churn", "--version", other, "--reason", "try v" + other)
    assert started.returncode == 0, started.stderr[-3000:]
    record = experiments.current(client(), NAME)
    assert record.running and record.challenger_version == other and f"experiment {record.id} start" in started.stdout
    status = _cli(env, "experiment", "status", "--problem", "churn")
    assert status.returncode == 0 and f"experiment {record.id} running" in status.stdout, status.stderr[-3000:]
    stopped = _cli(env, "experiment", "stop", "--problem", "churn", "--reason", "enough")
    assert stopped.returncode == 0 and f"experiment {record.id} stop (enough)" in stopped.stdout, stopped.stderr[-3000:]
    assert experiments.current(client(), NAME).status == experiments.STOPPED
    assert alias_version(client(), NAME, CHAMPION) == champion
    again = _cli(env, "experiment", "stop", "--problem", "churn")
    assert again.returncode == 0 and "no experiment running" in again.stdout
    actions = [e.asset_materialization.metadata["action"].value for e in env["instance"].fetch_materializations(
        dg.AssetKey(["churn", "experiment"]), limit=10).records]
    assert actions[:2] == ["stop", "start"]  # newest first


def test_the_exporter_reads_the_projects_registry_with_nothing_exported(env):
    port = free_port()  # a fixed port may be held by another test's exporter: it would answer for another store
    command = [sys.executable, "-m", "ml_assets.ops.cli", "exporter", "--port", str(port)]
    text = scrape_until(command, f"http://127.0.0.1:{port}/metrics", 'ml_assets_champion_version{problem="churn"}',
                        cwd=env["root"], env=_bare_environment())
    champion = alias_version(client(), NAME, CHAMPION)
    assert f'ml_assets_champion_version{{problem="churn"}} {float(champion)}' in text
    assert 'ml_assets_training_step_seconds{problem="churn",step="candidate_model"}' in text


def test_the_exporter_stops_on_sigterm_even_when_started_with_it_ignored(env):
    """A process launched in the background can inherit SIGTERM ignored; the exporter sets its own."""
    port = free_port()
    ignoring = ("import os, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "  # exec keeps SIG_IGN
                f"os.execv(sys.executable, [sys.executable, '-m', 'ml_assets.ops.cli', 'exporter', '--port', '{port}'])")
    process = subprocess.Popen([sys.executable, "-c", ignoring], cwd=env["root"], env=_bare_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "pipeline metrics on" in process.stdout.readline()  # started: its handler is in place
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_rollback_is_one_command_recorded_in_dagster(env):
    current, previous = alias_version(client(), NAME, CHAMPION), alias_version(client(), NAME, PREVIOUS)
    done = _cli(env, "rollback", "--problem", "churn", "--reason", "complaints from the call centre")
    assert done.returncode == 0, done.stderr
    assert f"champion is now v{previous}" in done.stdout
    assert alias_version(client(), NAME, CHAMPION) == previous
    event = env["instance"].get_latest_materialization_event(dg.AssetKey(["churn", "champion"]))
    meta = event.asset_materialization.metadata
    assert meta["action"].value == "rollback" and meta["rolled_back_version"].value == current
    assert meta["reason"].value == "complaints from the call centre"
    again = _cli(env, "rollback", "--problem", "churn")  # nothing earlier left to go back to: a clear error, champion unchanged
    assert again.returncode == 1 and "no previous champion" in again.stderr
    assert alias_version(client(), NAME, CHAMPION) == previous


def test_killed_during_registration_leaves_the_champion_servable_and_a_rerun_succeeds(env):
    champion = alias_version(client(), NAME, CHAMPION)
    day = pd.read_parquet(env["root"] / "data" / "warehouse" / "churn" / "features" / "2026-01-12.parquet")
    scores = load_version(NAME, champion).pipeline.predict_proba(day)[:, 1]  # the champion's, before the kill
    known = {v.version for v in client().search_model_versions(f"name = '{NAME}'")}
    config = env["root"] / "quick.yaml"
    config.write_text("ops:\n  churn__candidate_model:\n    config:\n      search_iterations: 1\n")
    command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "ml_examples.definitions",
               "-j", "train_churn_job", "-c", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               cwd=env["root"], env=_bare_environment())
    deadline = time.time() + 240
    while not {v.version for v in client().search_model_versions(f"name = '{NAME}'")} - known:
        assert process.poll() is None and time.time() < deadline, "training ended before registering"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # mid-registration: the version exists, nothing after it ran
    process.wait()
    assert alias_version(client(), NAME, CHAMPION) == champion
    scored = env["defs"].resolve_job_def("score_churn_job").execute_in_process(  # still servable: batch scoring
        instance=env["instance"], partition_key="2026-01-12").output_for_node("churn__predictions")
    assert set(scored["model_version"]) == {champion}
    assert scored["score"].to_numpy() == pytest.approx(scores, rel=1e-12) and scores.std() > 0
    rerun = _run(command, env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert alias_version(client(), NAME, CHAMPION) not in (champion, None)


def test_no_mlflow_file_anywhere_but_the_projects_store(env):
    """After every command above (subprocesses with cwd = the project, in-process runs)."""
    root, store = env["root"], env["root"] / "data" / "mlflow"
    strays = [p for name in ("mlflow.db", "mlruns") for p in root.rglob(name) if store not in p.parents]
    locations = {e.name: e.artifact_location for e in client().search_experiments()}
    assert not strays and (store / "mlflow.db").exists() and (store / "artifacts").is_dir(), locations
    assert not {"mlflow.db", "mlruns"} & {p.name for p in Path.cwd().iterdir()}, "stray files in the test's cwd"

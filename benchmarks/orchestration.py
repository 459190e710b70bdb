"""Orchestration overhead: the churn retraining path through the dagster CLI vs a plain script.

Both sides do the same work on the same data (the demo's default size: 28 days x 1,500 rows,
ingested once beforehand): training set -> search + CV of every family -> register in MLflow ->
the servable canary -> evaluation with plots -> the gates -> reference profile -> promotion. Each measurement is the wall time of a fresh process (interpreter, imports and
all), so the CLI's start-up counts against Dagster.

    .venv/bin/python benchmarks/orchestration.py [--repeat 2]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(home: Path) -> None:
    import dagster as dg
    from ml_examples.churn.simulation import WorldConfig, write_world
    from ml_examples.problems import example_problems

    from ml_assets.definitions import build_definitions
    from ml_assets.testing.runner import tick_sensor

    write_world(WorldConfig(start_date=date(2026, 1, 1)), 28, home / "data" / "landing")
    defs = build_definitions(example_problems())
    with dg.DagsterInstance.get() as instance:
        for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
            assert all(r.success for r in tick_sensor(defs, sensor, instance, ticks=2)[0])


def plain() -> None:
    """Every step of `train_churn_job`, with the same core functions, wired by hand in one process:
    training set; each family's search; pick, refit and register the winner; the servable canary
    (in a fresh process, as the check runs it); evaluation with plots and the champion's score on
    the same test split; the three evaluation gates; the reference profile; promotion."""
    import tempfile

    import mlflow
    import pandas as pd
    from ml_examples.churn.problem import CHURN as SPEC

    from ml_assets import settings
    from ml_assets.core.datasets import build_training_set
    from ml_assets.core.evaluation import evaluate_model, score_primary
    from ml_assets.core.gates import floor_gate, latency_gate, prediction_stats, regression_gate, sanity_gate
    from ml_assets.core.plots import feature_importance, plot_confusion, plot_curves, plot_importance
    from ml_assets.core.profile import build_profile
    from ml_assets.core.scoring import predict
    from ml_assets.core.training import pick_winner, prepare_search, search_candidate
    from ml_assets.mlflow.registry import CHAMPION, alias_version, load_version, log_version_artifact, promote
    from ml_assets.mlflow.resource import ensure_experiment
    from ml_assets.mlflow.tracking import TrackedRun, log_candidate, log_evaluation, register_model
    from ml_assets.serving.canary import run_canary
    from ml_assets.serving.scorer import canary_records

    name, uri, warehouse = SPEC.registered_model_name, settings.mlflow_tracking_uri(), Path(settings.warehouse_dir())
    features = pd.concat(map(pd.read_parquet, sorted((warehouse / "churn" / "features").glob("*.parquet"))))
    labels = pd.concat(map(pd.read_parquet, sorted((warehouse / "validated_labels").glob("*.parquet"))))
    frame = build_training_set(features, labels, SPEC)
    experiment = ensure_experiment(uri, "plain", settings.mlflow_artifact_location())
    client = mlflow.MlflowClient(uri)
    run = TrackedRun(client, client.create_run(experiment, run_name="plain").info.run_id)
    inputs = prepare_search(frame, SPEC)
    searches = [search_candidate(inputs, SPEC, candidate) for candidate in SPEC.training.candidates]
    for result, _ in searches:
        log_candidate(run, result)
    result = pick_winner(inputs, SPEC, [r for r, _ in searches], {r.name: p for r, p in searches})
    version = register_model(run, result, SPEC, frame[frame.split == "validation"][SPEC.feature_columns], {})["version"]
    with tempfile.TemporaryDirectory() as tmp:
        gates = [latency_gate(run_canary(name, version, canary_records(frame, SPEC), uri, Path(tmp)),
                              SPEC.gate.latency_budget_ms)]
        pipeline, test = load_version(name, version, uri).pipeline, frame[frame.split == "test"]
        evaluation = evaluate_model(pipeline, test, SPEC)
        plots = {**plot_curves(evaluation), "confusion": plot_confusion(evaluation),
                 "importance": plot_importance(feature_importance(pipeline, test, SPEC))}
        log_evaluation(run, evaluation.metrics, evaluation.slices, plots)
        score, label = predict(pipeline, test, SPEC)
        stats = prediction_stats(score, label, SPEC.task, test[SPEC.data.target].to_numpy())
        before = alias_version(client, name, CHAMPION)
        champion = {"version": before, "score": score_primary(load_version(name, before, uri).pipeline, test, SPEC)} \
            if before is not None else None
        primary = evaluation.metrics[f"primary_{SPEC.training.primary_metric}"]
        gates += [floor_gate(primary, SPEC), regression_gate(primary, champion, SPEC), sanity_gate(stats, SPEC.task)]
        profile = build_profile(frame[frame.split != "test"], SPEC.data.numeric_features, SPEC.data.categorical_features)
        local = Path(tmp) / "reference_profile.npz"
        with local.open("wb") as out:
            profile.save(out)
        log_version_artifact(client, name, version, str(local), "monitoring")
    client.set_terminated(run.run_id)
    if all(gate.passed for gate in gates):
        promote(client, name, version)


def _timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain or args.prepare:
        (plain if args.plain else lambda: prepare(Path(os.environ["ML_ASSETS_HOME"])))()
        return
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "dagster_home").mkdir()
        env = {**os.environ, "ML_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
               "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}", "PYTHONWARNINGS": "ignore"}
        subprocess.run([sys.executable, __file__, "--prepare"], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dagster = [sys.executable, "-m", "dagster", "job", "execute", "-j", "train_churn_job"]
        variants = {
            "plain script (core functions)": [sys.executable, __file__, "--plain"],
            "dagster CLI, in-process executor (default)": [*dagster, "-m", "ml_examples.definitions"],
            "dagster CLI, multiprocess executor": [*dagster, "-f", str(Path(__file__).with_name("multiprocess_defs.py"))],
        }
        times = {name: [] for name in variants}
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits every variant alike
            for name, cmd in variants.items():
                times[name].append(_timed(cmd, env))
    base = statistics.median(times["plain script (core functions)"])
    print(f"churn retraining path, demo-size data (28 days x 1,500 rows); median of {args.repeat} "
          "fresh-process runs, interleaved\n")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<46} {median:6.1f} s  overhead {100 * (median - base) / base:+5.1f} %   "
              f"(runs: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()

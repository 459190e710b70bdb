"""`make demo`: simulate weeks of the churn world, ingest every day, then train, register and
evaluate the churn model, all through Dagster on the embedded defaults (project-local Dagster
home, MLflow store and data under data/). Ingestion runs are launched the way the landing sensors
would, so `make ui` afterwards shows the same history.
"""

import argparse
import os
import shutil
import time
import warnings
from datetime import date, timedelta

import dagster as dg

from ml_assets import settings
from ml_assets.runner import tick_sensor
from ml_assets.simulation import WorldConfig, parse_scenario, write_world


def ensure_dagster_home() -> str:
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.project_home() / ".dagster_home"))
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    template = settings.project_home() / "deploy" / "dagster.yaml"
    if not os.path.exists(config) and template.exists():
        shutil.copyfile(template, config)
    return home


def _summary_rows(results: list[dg.ExecuteInProcessResult]) -> list[str]:
    lines = []
    for result in results:
        day = result.dagster_run.tags.get("dagster/partition", "?")
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            if mat.asset_key.path[-1].startswith("validated_"):
                meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
                lines.append(f"{day}  {mat.asset_key.path[-1]:<22} in={meta['rows_in']:>6} "
                             f"valid={meta['dagster/row_count']:>6} quarantined={meta['rows_quarantined']:>5}")
        if not result.success:
            lines.append(f"{day}  run {result.run_id[:8]} FAILED (see `make ui` -> Runs)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--no-train", action="store_true", help="stop after ingestion")
    parser.add_argument("--rows-per-day", type=int, default=1_500)
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME@DAY")
    parser.add_argument("--search-iterations", type=int, default=0, help="random-search draws (0: the spec's)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in beta")  # dagster-mlflow/-pandera labels
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in the story
    home = ensure_dagster_home()
    start = date.today() - timedelta(days=args.days)  # the last simulated day is yesterday
    world = WorldConfig(start_date=start, rows_per_day=args.rows_per_day,
                        scenarios=tuple(parse_scenario(s) for s in args.scenario))
    files = write_world(world, args.days, settings.landing_dir())
    print(f"simulated {args.days} days ({start} .. {world.day_date(args.days - 1)}): "
          f"{len(files)} files in {settings.landing_dir()}")

    from ml_assets.definitions import defs  # after DAGSTER_HOME and paths are settled

    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
            results, _, skipped = tick_sensor(defs, sensor, instance)
            print(f"\n{sensor}: {len(results)} run(s) launched" + (f" ({skipped[0]})" if skipped else ""))
            print("\n".join(_summary_rows(results)))
        print(f"\ningestion: {time.perf_counter() - started:.0f}s")
        if not args.no_train:
            _train(defs, instance, str(world.day_date(args.days - 1)), args.search_iterations)
    print(f"\nDagster home: {home}\nSee it in the UI: `make ui`, then http://127.0.0.1:3000 -> Assets "
          "(groups 'ingestion' and 'models': lineage, schemas, metadata, plots, check results).")
    return 0


def _train(defs: dg.Definitions, instance: dg.DagsterInstance, last_day: str, search_iterations: int) -> None:
    started = time.perf_counter()
    config = {"ops": {"churn__candidate_model": {"config": {"search_iterations": search_iterations}}}}
    result = defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                        run_config=config if search_iterations else None)
    if not result.is_node_success("churn__evaluation"):
        print(f"\ntraining run {result.run_id[:8]} FAILED; see `make ui` -> Runs")
        return
    model, evaluation = result.output_for_node("churn__candidate_model"), result.output_for_node("churn__evaluation")
    metrics = evaluation["metrics"]
    print(f"\ntrained, registered, evaluated and gated in {time.perf_counter() - started:.0f}s: "
          f"{model['uri']} (best: {model['best_candidate']}, validation {model['primary_metric']} "
          f"{model['validation_score']:.3f})")
    print("test split: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "pr_auc", "log_loss", "brier", "f1")))
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            print(f"  gate {check.check_name:<18} {'PASS' if check.passed else 'FAIL'}  {check.description}")
    from ml_assets.model_registry import CHAMPION, alias_version, client

    champion = alias_version(client(), model["name"], CHAMPION)
    promoted = champion == model["version"]
    print(f"{model['name']}@{CHAMPION} -> v{champion}" + ("" if promoted else f" (v{model['version']} not promoted)"))
    if champion is None:
        return
    scored = defs.resolve_job_def("score_churn_job").execute_in_process(instance=instance, partition_key=last_day,
                                                                        raise_on_error=False)
    if scored.success:
        frame = scored.output_for_node("churn__predictions")
        print(f"batch-scored {last_day}: {len(frame)} customers with v{champion}, "
              f"predicted churn rate {frame['label'].mean():.1%}")
    print(f"MLflow: `make mlflow-ui`, then http://127.0.0.1:5000/#/models/{model['name']}/versions/{model['version']}")
    print("Serve it: `make serve`, then POST http://127.0.0.1:8000/predict (docs at /docs)")


if __name__ == "__main__":
    raise SystemExit(main())

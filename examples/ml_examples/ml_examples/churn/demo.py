"""`make demo`: the whole loop on the embedded defaults (project-local Dagster home, MLflow store
and data under data/), all through Dagster:

1. weeks of the simulated churn world land and are ingested (as the landing sensors request);
2. the first model is trained, gated and promoted to champion;
3. the following days are replayed one by one, as the daemon runs them: files land, the sensors
   ingest, declarative automation scores and monitors the day, the drift sensor decides. On the
   drift day a new customer segment arrives and the churn relationship changes: drift is
   detected, the sensor waits for labels, retrains once, the gate promotes, drift clears.

`make ui` afterwards shows the same history (runs, materializations, sensor ticks).
"""

import argparse
import os
import sys
import time
import warnings
from datetime import date, timedelta

import dagster as dg

from ml_assets import settings
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.mlflow.resource import mlflow_of
from ml_assets.ops.location import ensure_dagster_home
from ml_assets.testing.runner import tick_sensor
from ml_examples.churn.replay import Replay
from ml_examples.churn.simulation import WorldConfig, parse_scenario, write_world
from ml_examples.churn.story import failed_checks, one_line, run_failure, story


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


STORY = ("new_segment@27", "concept_drift@27")
QUIET = "ERROR"  # per-event console lines (and quarantine warnings, tabled above) would drown the story


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--first-training", type=int, default=20, help="day after which the first model is trained")
    parser.add_argument("--no-train", action="store_true", help="ingest every day, then stop")
    parser.add_argument("--rows-per-day", type=int, default=1_500)
    parser.add_argument("--label-delay", type=int, default=3, help="days until a snapshot's label lands")
    parser.add_argument("--scenario", action="append", metavar="NAME@DAY", help=f"default: {' '.join(STORY)}")
    parser.add_argument("--search-iterations", type=int, default=0, help="random-search draws (0: the spec's)")
    parser.add_argument("--metric-floor", type=float, help="override churn's gate floor (e.g. 0.999 to see the "
                                                           "gate refuse, and the demo fail)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in beta")  # dagster-mlflow/-pandera labels
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in the story
    home = ensure_dagster_home()
    start = date.today() - timedelta(days=args.days)  # the last simulated day is yesterday
    world = WorldConfig(start_date=start, rows_per_day=args.rows_per_day, label_delay_days=args.label_delay,
                        scenarios=tuple(parse_scenario(s) for s in args.scenario or STORY))
    bulk = args.days if args.no_train else min(args.first_training + 1, args.days)
    files = write_world(world, bulk, settings.landing_dir())
    print(f"simulated {bulk} days ({start} .. {world.day_date(bulk - 1)}): {len(files)} files in "
          f"{settings.landing_dir()}; scenarios: {', '.join(f'{s.name} from {world.day_date(s.day)}' for s in world.scenarios) or 'none'}")

    defs = _definitions(args.metric_floor)  # after DAGSTER_HOME and paths are settled
    failures: list[str] = []
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
            results, _, skipped = tick_sensor(defs, sensor, instance, log_level=QUIET, ticks=2)
            print(f"\n{sensor}: {len(results)} run(s) launched" + (f" ({skipped[0]})" if skipped else ""))
            print("\n".join(_summary_rows(results)))
            failures += [line for result in results if (line := run_failure(result, "ingestion"))]
        print(f"\ningestion: {time.perf_counter() - started:.0f}s")
        if not args.no_train:
            replay = Replay(defs, instance, world, settings.landing_dir(), log_level=QUIET)
            first = _train(replay, args.search_iterations)
            failures += first if first else story(replay, range(bulk, args.days)).failures
    print(f"\nDagster home: {home}\nSee it in the UI: `make ui`, then http://127.0.0.1:3000 -> Assets (groups "
          "ingestion, churn_models, churn_deployment, churn_monitoring: lineage, schemas, metadata, plots, "
          "check results), "
          "Automation (sensor ticks and why they skipped), Runs.\nPipeline metrics for Prometheus: `make exporter`.")
    if failures:
        print(f"\ndemo FAILED ({len(failures)} problem(s)):", file=sys.stderr)
        print("\n".join(f"  - {line}" for line in failures), file=sys.stderr)
        return 1
    return 0


def _definitions(metric_floor: float | None) -> dg.Definitions:
    from ml_assets.definitions import build_definitions
    from ml_examples.problems import example_problems

    return build_definitions([p.evolve(metric_floor=metric_floor) if p.name == "churn" and metric_floor is not None
                              else p for p in example_problems()])


def _train(replay: Replay, search_iterations: int) -> list[str]:
    """Train, gate and promote the first model; what went wrong, one line each ([] when it became champion)."""
    started = time.perf_counter()
    result = replay.train({"ops": {"churn__candidate_model": {"config": {"search_iterations": search_iterations}}}}
                          if search_iterations else None)
    if not result.is_node_success("churn__evaluation"):
        print(f"\ntraining run {result.run_id[:8]} FAILED; see `make ui` -> Runs")
        return [run_failure(result, "first training") or f"first training run {result.run_id[:8]} failed"]
    model, evaluation = result.output_for_node("churn__candidate_model"), result.output_for_node("churn__evaluation")
    metrics = evaluation["metrics"]
    print(f"\ntrained, registered, evaluated and gated in {time.perf_counter() - started:.0f}s: "
          f"{model['uri']} (best: {model['best_candidate']}, validation {model['primary_metric']} "
          f"{model['validation_score']:.3f})")
    print("test split: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "pr_auc", "log_loss", "brier", "f1")))
    print("\n".join(_gate_lines(result)))
    champion = alias_version(mlflow_of(replay.defs).client(), model["name"], CHAMPION)
    print(f"{model['name']}@{CHAMPION} -> v{champion}")
    print(f"MLflow: `make mlflow-ui`, then http://127.0.0.1:5000/#/models/{model['name']}/versions/{model['version']}")
    if champion is None:
        failed = failed_checks(result) or [one_line(run_failure(result, "first training") or "champion not moved")]
        return [f"no champion after the first training: {line}" for line in failed]
    print("Serve it: `make serve`, then POST http://127.0.0.1:8000/predict (docs at /docs)")
    return []


def _gate_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"  gate {e.event_specific_data.check_name:<18} {'PASS' if e.event_specific_data.passed else 'FAIL'}  "
            f"{e.event_specific_data.description}" for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"]


if __name__ == "__main__":
    raise SystemExit(main())

"""`ml-assets experiment start|stop|status`: an operator's hand on the online experiment.

Start and stop run the problem's `experiment_<problem>_job` on the project's instance, so every
operator action is a Dagster run with a materialization of `<problem>/experiment`, next to the
decisions the sensor applies; status reads the registry record and the latest decision.
"""

from __future__ import annotations

import argparse
import sys


def execute_job(module: str | None, job_name: str, run_config: dict):
    """Run one of the location's jobs in process on the project's instance; (result, error text)."""
    import dagster as dg

    from ml_assets.ops.location import ensure_dagster_home, load_location

    ensure_dagster_home()
    defs = load_location(module)
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False,
                                                                    run_config=run_config)
    if result.success:
        return result, ""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    cause = failure.step_failure_data.error.message.strip() if failure else "see the run in the Dagster UI"
    return result, f"run {result.run_id} failed: {cause}"


def experiment(args: argparse.Namespace) -> int:
    if args.action == "status":
        return _status(args)
    from ml_assets.mlflow.registry import CHALLENGER, alias_version
    from ml_assets.mlflow.resource import mlflow_of
    from ml_assets.ops.location import load_location
    from ml_assets.problem.spec import model_name

    version = args.version
    if args.action == "start" and not version:
        version = alias_version(mlflow_of(load_location(args.module)).client(), model_name(args.problem), CHALLENGER)
        if version is None:
            print(f"experiment start: {model_name(args.problem)} has no @challenger; pass --version N",
                  file=sys.stderr)
            return 2
    op = f"apply_{args.problem}_experiment_action"
    config = {"action": args.action, "version": version or "", "reason": args.reason or f"operator {args.action}"}
    result, error = execute_job(args.module, f"experiment_{args.problem}_job", {"ops": {op: {"config": config}}})
    if error:
        print(f"experiment {args.action} failed: {error}", file=sys.stderr)
        return 1
    events = result.asset_materializations_for_node(op)
    if not events:
        print(f"{args.problem}: no experiment running, nothing to {args.action}")
        return 0
    meta = {k: v.value for k, v in events[-1].metadata.items()}
    print(f"{args.problem}: experiment {meta['experiment_id']} {args.action} ({meta['reason']}); "
          f"Dagster run {result.run_id}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import dagster as dg

    from ml_assets.automation.experiment_sensor import latest_decision
    from ml_assets.mlflow import experiments
    from ml_assets.mlflow.resource import mlflow_of
    from ml_assets.ops.location import ensure_dagster_home, load_location, location_problems

    ensure_dagster_home()
    defs = load_location(args.module)
    spec = next((p for p in location_problems(defs) if p.name == args.problem), None)
    if spec is None:
        print(f"experiment status: no problem {args.problem!r} in this code location", file=sys.stderr)
        return 2
    record = experiments.current(mlflow_of(defs).client(), spec.registered_model_name)
    if record is None:
        print(f"{spec.registered_model_name}: no experiment yet (experiment.promotion = {spec.experiment.promotion})")
        return 0
    print(f"{spec.registered_model_name}: experiment {record.id} {record.status} — {record.mode}, challenger "
          f"v{record.challenger_version} ({record.challenger_share:.0%} of entities) vs champion "
          f"v{record.champion_version}, started {record.started_utc}"
          + (f", ended {record.ended_utc}: {record.reason}" if record.ended_utc else ""))
    with dg.DagsterInstance.get() as instance:
        decision = latest_decision(instance, spec)
    if decision.get("experiment_id") == record.id:
        print(f"latest decision: {decision.get('action')} — {decision.get('reason')}")
    return 0


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser("experiment", help="start, stop or show the online experiment of a problem")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--version", help="start: the challenger version (default: the @challenger alias)")
    p.add_argument("--reason", help="recorded with the start or stop")
    p.set_defaults(run=experiment)
    return p

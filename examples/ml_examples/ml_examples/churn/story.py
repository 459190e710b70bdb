"""The day-by-day part of `make demo`: replay days through Dagster and print what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import mean

import dagster as dg

from ml_assets.mlflow.resource import user_message
from ml_examples.churn.replay import Replay


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """`gate <check>: <reason>` for every failed check of a run."""
    return [f"gate {e.event_specific_data.check_name}: {one_line(e.event_specific_data.description or 'failed')}"
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed]


def run_failure(result: dg.ExecuteInProcessResult, what: str) -> str | None:
    """`<what> run <id> failed at <step>: <error>` for a failed run, None for a successful one."""
    if result.success:
        return None
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    if failure is None:
        return f"{what} run {result.run_id[:8]} failed (see `make ui` -> Runs)"
    return f"{what} run {result.run_id[:8]} failed at {failure.step_key}: " \
           f"{one_line(user_message(failure.step_failure_data.error))}"


@dataclass
class StoryOutcome:
    retrained: str | None = None  # the day of the first drift retrain
    failures: list[str] = field(default_factory=list)  # what went wrong, one line each


def _line(replay: Replay, report, drift: dict, performance: dict) -> str:
    day, metric = str(replay.world.day_date(report.day)), replay.spec.primary_metric_name
    d = drift.get(day)
    share = f"{'YES' if d['dataset_drift'] else 'no':<3} {d['drift_share']:.2f}" if d else "-      "
    columns = d["drifted_columns"] if d and d["dataset_drift"] else ""
    p = performance.get(day, {})
    realized = (f"{p[f'realized_{metric}']:.3f} v{p['model_version']} ({p['snapshot_day'][5:]})"
                if f"realized_{metric}" in p else "")
    if report.retrains:
        run = report.retrains[0]
        checks = [e.event_specific_data.passed for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        said = f"RETRAIN (episode since {run.dagster_run.tags.get('ml_assets/episode')}), gate {sum(checks)}/" \
               f"{len(checks)} passed -> " + (f"v{replay.champion()} promoted"
                                              if run.success else "not promoted")
    else:
        said = report.sensor_said or ""
    failed = f"  [{len(report.failed)} run(s) FAILED]" if report.failed else ""
    return f"{day}  {share}  {realized:<22} {columns[:38]:<38}  {said}{failed}"


def story(replay: Replay, days: range) -> StoryOutcome:
    """Replay the days and print them; the outcome lists every way the story failed."""
    started, before = time.perf_counter(), replay.champion()
    print(f"\nreplaying {len(days)} days as the daemon would run them: land -> ingest -> (automation) score, "
          f"drift report, realized performance -> drift sensor")
    realized = "realized " + replay.spec.primary_metric_name
    print(f"{'day':<10}  {'drift':<8}  {realized:<22} {'drifted columns':<38}  drift sensor")
    outcome = StoryOutcome()
    for day in days:
        report = replay.run_day(day)
        print(_line(replay, report, replay.metadata("drift_report"), replay.metadata("performance")))
        date = str(replay.world.day_date(day))
        if report.retrains and outcome.retrained is None:
            outcome.retrained = date
        for run in report.retrains:
            outcome.failures += [f"{date} retrain {line}" for line in failed_checks(run)]
        outcome.failures += [line for run in report.failed if (line := run_failure(run, date))]
    episodes = [str(replay.world.day_date(s.day)) for s in replay.world.scenarios if s.day in days]
    if episodes and outcome.retrained is None:
        outcome.failures.append(f"no retrain during the drift episode from {min(episodes)} "
                                f"(last drift sensor reason: {report.sensor_said or '-'})")
    _summary(replay, before, outcome.retrained, time.perf_counter() - started)
    return outcome


def _summary(replay: Replay, before: str | None, retrained: str | None, seconds: float) -> None:
    drift, performance = replay.metadata("drift_report"), replay.metadata("performance")
    starts = sorted(str(replay.world.day_date(s.day)) for s in replay.world.scenarios)
    shift = starts[0] if starts else "9999-12-31"
    after, metric = replay.champion(), replay.spec.primary_metric_name

    def share(keep) -> str:
        values = [m["drift_share"] for d, m in drift.items() if keep(d)]
        return f"{mean(values):.2f} ({len(values)} d)" if values else "-"

    def realized(keep) -> str:
        values = [m[f"realized_{metric}"] for m in performance.values() if f"realized_{metric}" in m and keep(m)]
        return f"{mean(values):.3f} ({len(values)} d)" if values else "-"

    end = retrained or "9999-12-31"
    print(f"\nsummary ({seconds:.0f}s of replay)")
    print(f"  champion: v{before} -> v{after}" + (f" (retrained on {retrained} by the drift sensor)" if retrained
                                                 else " (no retrain)"))
    print(f"  drift share: before {shift} {share(lambda d: d < shift)}, drift episode {share(lambda d: shift <= d <= end)}"
          f", after retraining {share(lambda d: d > end)}")
    print(f"  realized {metric}: before {shift} {realized(lambda m: m['snapshot_day'] < shift)}, "
          f"v{before} on drifted days {realized(lambda m: m['snapshot_day'] >= shift and m['model_version'] == before)}"
          f", v{after} after retraining {realized(lambda m: m['model_version'] == after and after != before)}")

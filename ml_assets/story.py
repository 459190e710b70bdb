"""The day-by-day part of `make demo`: replay days through Dagster and print what happened."""

from __future__ import annotations

import time
from statistics import mean

from ml_assets.replay import Replay


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


def story(replay: Replay, days: range) -> None:
    started, before = time.perf_counter(), replay.champion()
    print(f"\nreplaying {len(days)} days as the daemon would run them: land -> ingest -> (automation) score, "
          f"drift report, realized performance -> drift sensor")
    realized = "realized " + replay.spec.primary_metric_name
    print(f"{'day':<10}  {'drift':<8}  {realized:<22} {'drifted columns':<38}  drift sensor")
    retrained = None
    for day in days:
        report = replay.run_day(day)
        print(_line(replay, report, replay.metadata("drift_report"), replay.metadata("performance")))
        if report.retrains and retrained is None:
            retrained = str(replay.world.day_date(day))
    _summary(replay, before, retrained, time.perf_counter() - started)


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

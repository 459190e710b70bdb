"""An experiment's evidence, day by day: served answers joined with their late labels, the per-row
loss of each arm, and the sequential test after each day. Pure: frames in, frames out.

The served rows carry `experiment_id` and `arm` (which model answered) from the scoring service;
shadow experiments answer every entity with the champion and carry the challenger's
`shadow_score` on the same row, so their test is paired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_assets.core.experiments import (
    CHALLENGER_ARM,
    CHAMPION_ARM,
    CONTINUE,
    STOP,
    Decision,
    decide,
    msprt,
    msprt_paired,
    row_loss,
)
from ml_assets.core.metrics import LABEL
from ml_assets.core.performance import primary
from ml_assets.problem.spec import ProblemSpec

PATH_COLUMNS = ["day", "n_champion", "n_challenger", "champion_loss", "challenger_loss", "difference", "lower",
                "upper", "statistic", "boundary", "action", "reason"]


def _loss(spec: ProblemSpec, rows: pd.DataFrame, score_column: str) -> np.ndarray:
    metric, y = primary(spec), rows[spec.data.target].to_numpy()
    score = rows[score_column].to_numpy(dtype=float)
    if metric.needs == LABEL:  # a served row's label is the thresholded score (core/scoring.py), also for shadow
        output = rows["label"].to_numpy() if score_column == "score" and "label" in rows else \
            (score >= spec.decision_threshold).astype(int)
        return row_loss(metric, y, output)
    return row_loss(metric, y, score)  # P(positive), or the value of a regression


def experiment_rows(joined: pd.DataFrame, experiment_id: str) -> pd.DataFrame:
    """The labelled served rows of one experiment (others, and rows served outside any, dropped)."""
    if joined.empty or "experiment_id" not in joined:
        return joined.iloc[0:0]
    return joined[joined["experiment_id"] == experiment_id]


def sequential_test(rows: pd.DataFrame, spec: ProblemSpec, mode: str):
    """The sequential test on these rows: two arms (ab, canary) or paired (shadow)."""
    e = spec.experiment
    if mode == "shadow":
        paired = rows[rows["shadow_score"].notna()]
        return msprt_paired(_loss(spec, paired, "shadow_score") - _loss(spec, paired, "score"), e.alpha, e.mixture_sd)
    champion, challenger = rows[rows["arm"] == CHAMPION_ARM], rows[rows["arm"] == CHALLENGER_ARM]
    return msprt(_loss(spec, champion, "score"), _loss(spec, challenger, "score"), e.alpha, e.mixture_sd)


def calibration_breach(rows: pd.DataFrame, spec: ProblemSpec, mode: str) -> str | None:
    """Binary problems: the challenger's mean score vs the observed positive rate on its labelled
    rows, once there are min_samples of them; a reason when they differ by more than allowed."""
    if spec.task != "binary":
        return None  # label-only outputs have no calibration to check
    mine = rows if mode == "shadow" else rows[rows["arm"] == CHALLENGER_ARM]
    score = mine["shadow_score" if mode == "shadow" else "score"].to_numpy(dtype=float)
    score = score[np.isfinite(score)]
    if len(score) < spec.experiment.min_samples:
        return None
    observed = float(mine[spec.data.target].mean())
    gap = abs(float(score.mean()) - observed)
    if gap <= spec.experiment.max_calibration_error:
        return None
    return (f"guardrail: the challenger is miscalibrated: mean score {score.mean():.3f} vs observed rate "
            f"{observed:.3f} on {len(score)} labelled rows (|gap| {gap:.3f} > {spec.experiment.max_calibration_error})")


def decision_path(rows: pd.DataFrame, spec: ProblemSpec, mode: str, started: str, today: str) -> pd.DataFrame:
    """One row per day of the experiment up to `today`: the test on every labelled row of records up
    to that day, and what the rule would have decided then. The last row is today's decision.

    The experiment's days are its records' days (the problem's time column) from the first record it
    answered, not the wall clock: a backfill, a replayed world or late labels count the days the
    traffic describes. Before any answered record, the days count from `started`."""
    when = pd.to_datetime(rows[spec.data.time_column]).dt.normalize() if len(rows) else pd.Series(dtype="datetime64[ns]")
    first = when.min() if len(rows) else pd.Timestamp(started).tz_localize(None).normalize()
    days = pd.date_range(first, today, freq="D")
    if not len(days):  # `today` lies before the experiment's first day: nothing to decide yet
        days = pd.DatetimeIndex([pd.Timestamp(today)])
    out = []
    for i, day in enumerate(days, 1):
        upto = rows[when <= day]
        result = sequential_test(upto, spec, mode)
        decision = decide(result, i, spec.experiment.min_samples, spec.experiment.max_days)
        if decision.action != STOP and (breach := calibration_breach(upto, spec, mode)):
            decision = Decision(STOP, breach, result)
        out.append(_path_row(day, upto, spec, mode, decision))
        if decision.action != CONTINUE:
            break  # an experiment ends at its decision: later days are not part of it
    return pd.DataFrame(out, columns=PATH_COLUMNS)


def _path_row(day: pd.Timestamp, rows: pd.DataFrame, spec: ProblemSpec, mode: str, decision: Decision) -> dict:
    r = decision.result
    if mode == "shadow":
        paired = rows[rows["shadow_score"].notna()] if len(rows) else rows
        losses = (_loss(spec, paired, "score"), _loss(spec, paired, "shadow_score")) if len(paired) else ((), ())
    else:
        losses = tuple(_loss(spec, rows[rows["arm"] == arm], "score") if len(rows) else ()
                       for arm in (CHAMPION_ARM, CHALLENGER_ARM))
    means = [float(np.mean(x)) if len(x) else float("nan") for x in losses]
    return {"day": f"{day:%Y-%m-%d}", "n_champion": r.n_champion, "n_challenger": r.n_challenger,
            "champion_loss": means[0], "challenger_loss": means[1], "difference": r.difference, "lower": r.lower,
            "upper": r.upper, "statistic": r.statistic, "boundary": r.boundary, "action": decision.action,
            "reason": decision.reason}

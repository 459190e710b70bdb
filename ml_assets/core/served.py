"""Served traffic: what the scoring service answered, read from its prediction log. Pure.

A served row belongs to the day its record describes (the problem's time column, the day the
labels will describe too), so served predictions line up with that day's batch predictions, drift
report and labels; a problem without a time column files rows by when they were served.
"""

from __future__ import annotations

import pandas as pd

from ml_assets.problem.spec import ProblemSpec

KEY_COLUMNS = ["request_id", "served_at", "model_name", "model_version", "score"]


def served_day(log: pd.DataFrame, day: str, spec: ProblemSpec) -> pd.DataFrame:
    """The log's rows for `day` ("YYYY-MM-DD"), oldest answer first, `timestamp` as `served_at`."""
    keys = [spec.data.id_column] + ([spec.data.time_column] if spec.data.time_column else [])
    if log.empty:
        types = {spec.data.time_column: "datetime64[ns]", "served_at": "datetime64[ns]", "score": float}
        return pd.DataFrame({c: pd.Series(dtype=types.get(c, object)) for c in [*keys, *KEY_COLUMNS]})
    when = log[spec.data.time_column] if spec.data.time_column else log["timestamp"]
    rows = log[pd.to_datetime(when).dt.strftime("%Y-%m-%d") == day]
    rows = rows.drop(columns=[c for c in ("day",) if c in rows]).rename(columns={"timestamp": "served_at"})
    return rows.sort_values("served_at", kind="stable").reset_index(drop=True)


def last_answers(served: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    """One row per record (id, time): the last answer the service gave for it. A client that retried
    or asked twice was answered twice; its labels describe the record once."""
    keys = [spec.data.id_column] + ([spec.data.time_column] if spec.data.time_column else [])
    return served.drop_duplicates(keys, keep="last")

"""Served rows by day, and one answer per record for the label join."""

import pandas as pd
from ml_examples.churn.problem import CHURN

from ml_assets.core.served import last_answers, served_day


def _log() -> pd.DataFrame:
    return pd.DataFrame({
        "request_id": ["r1", "r1", "r2", "r3"], "customer_id": ["C1", "C2", "C1", "C3"],
        "snapshot_date": pd.to_datetime(["2026-01-02", "2026-01-02", "2026-01-02", "2026-01-01"]),
        "timestamp": pd.to_datetime(["2026-01-05 10:00", "2026-01-05 10:00", "2026-01-05 09:00", "2026-01-05 11:00"]),
        "model_name": "churn_model", "model_version": ["1", "1", "2", "1"], "score": [0.1, 0.2, 0.3, 0.4],
        "day": pd.Categorical(["2026-01-05"] * 4)})


def test_rows_belong_to_the_day_their_record_describes_oldest_answer_first():
    day = served_day(_log(), "2026-01-02", CHURN)
    assert list(day["request_id"]) == ["r2", "r1", "r1"] and "day" not in day and "timestamp" not in day
    assert list(day["served_at"]) == sorted(day["served_at"])
    assert served_day(_log(), "2026-01-05", CHURN).empty  # the serving date is not the record's day


def test_a_record_asked_twice_keeps_its_last_answer():
    answers = last_answers(served_day(_log(), "2026-01-02", CHURN), CHURN)
    assert answers.set_index("customer_id")["request_id"].to_dict() == {"C1": "r1", "C2": "r1"}
    assert answers.set_index("customer_id")["model_version"].to_dict() == {"C1": "1", "C2": "1"}


def test_an_empty_log_is_an_empty_day_with_the_key_columns():
    day = served_day(pd.DataFrame(), "2026-01-02", CHURN)
    assert day.empty and {"customer_id", "snapshot_date", "request_id", "served_at", "model_version"} <= set(day)
    assert str(day["snapshot_date"].dtype) == str(day["served_at"].dtype) == "datetime64[ns]"  # joins like a full day

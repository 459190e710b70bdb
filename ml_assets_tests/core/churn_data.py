"""Churn features and labels straight from the simulator (no ingestion), for core tests."""

from datetime import date
from pathlib import Path

import pandas as pd
from ml_examples.churn.problem import CHURN, CUSTOMERS
from ml_examples.churn.simulation import WorldConfig, simulate_day
from ml_examples.churn.simulation.world import _population

from ml_assets.core.day_files import validate_files


def churn_frames(days: int = 12, rows: int = 300, raw: bool = False, start: date = date(2026, 1, 1),
                 **world) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, labels) of `days` simulated days; raw=True: the customer snapshots instead of features."""
    cfg = WorldConfig(start_date=start, rows_per_day=rows, population=rows * 5, dirty_rate=0.0, **world)
    pop, features, labels = _population(cfg), [], []
    for day in range(days):
        customers, truth = simulate_day(cfg, day, pop)
        customers["snapshot_date"] = pd.to_datetime(customers["snapshot_date"])
        truth["snapshot_date"] = pd.to_datetime(truth["snapshot_date"])
        features.append(customers if raw else CHURN.features_of(customers))
        labels.append(truth)
    return pd.concat(features, ignore_index=True), pd.concat(labels, ignore_index=True)


SMALL_CHURN = CHURN.evolve(search_iterations=2, cv_folds=2, validation_days=2, test_days=2)


def validated_day(folder: Path, rows: int = 300) -> pd.DataFrame:
    """One simulated day (with its dirt) as the validator hands it on: string[pyarrow] ids, categoricals."""
    frame, _ = simulate_day(WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=rows * 4), 0)
    path = folder / "customers_2026-01-01.csv"
    frame.to_csv(path, index=False)
    return validate_files([path], CUSTOMERS.schema, {"snapshot_date": date(2026, 1, 1)}).valid

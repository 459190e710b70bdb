"""Training sets: labelled rows over a trailing window, split by time (or at random for static data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ml_assets.problem.spec import ProblemSpec

SPLITS = ("train", "validation", "test")


def _check_classes(frame: pd.DataFrame, spec: ProblemSpec) -> None:
    if spec.task == "regression":
        return
    for split in SPLITS:
        classes = frame.loc[frame["split"] == split, spec.data.target].nunique()
        if classes < 2:
            raise ValueError(f"the {split} split has {classes} class(es) of {spec.data.target!r}; a classifier "
                             "needs at least two: widen the training window or check the labels")


def days_in_window(labelled_days: np.ndarray, spec: ProblemSpec, since: str | None = None) -> np.ndarray:
    """The labelled days inside the training window: `window_days` calendar days back from the
    newest labelled day (that day included), and none before `since`. Counting calendar days, not
    labelled days, keeps old days out when days are missing (an outage, labels still to come)."""
    days = np.unique(labelled_days.astype("datetime64[D]"))
    days = days[days > days[-1] - np.timedelta64(spec.training.window_days, "D")]
    return days[days >= np.datetime64(since, "D")] if since else days


def build_training_set(features: pd.DataFrame, labels: pd.DataFrame, spec: ProblemSpec,
                       since: str | None = None) -> pd.DataFrame:
    """Join features with the labels that have arrived; keep the `window_days` calendar days up to
    the newest labelled day (and none before `since`, e.g. the first day of a drift episode).

    The most recent `test_days` are the test split and the `validation_days` before them the
    validation split, so no model is ever scored on days older than the ones it learned from.
    Rows are ordered by (day, id).
    """
    keys = [spec.data.id_column, spec.data.time_column]
    if features.empty:
        raise ValueError("no feature rows to train on: materialize the features for some days first")
    if labels.empty:
        raise ValueError("no labels have arrived yet; labels land days after the snapshots: "
                         "ingest label files first")
    labelled = features.merge(labels[[*keys, spec.data.target]], on=keys, how="inner", validate="one_to_one")
    if labelled.empty:
        raise ValueError(f"no labels have arrived for the {len(features)} feature rows; labels land days "
                         "after the snapshots: ingest later label files first")
    days = days_in_window(labelled[spec.data.time_column].to_numpy(), spec, since)
    require_days(days, spec, labelled[spec.data.time_column].max(), since)
    day = labelled[spec.data.time_column].to_numpy().astype("datetime64[D]")
    frame = labelled[np.isin(day, days)].sort_values([spec.data.time_column, spec.data.id_column], kind="stable")
    return assign_splits(frame.reset_index(drop=True), days, spec)


def require_days(days: np.ndarray, spec: ProblemSpec, newest, since: str | None) -> None:
    """Enough labelled days in the window for train + validation + test, or an error saying so."""
    need = spec.training.test_days + spec.training.validation_days + 1
    if len(days) < need:
        raise ValueError(f"training needs at least {need} labelled days (test {spec.training.test_days} + validation "
                         f"{spec.training.validation_days} + 1 to train on), found {len(days)} in the window of "
                         f"{spec.training.window_days} calendar days up to {pd.Timestamp(newest):%Y-%m-%d}"
                         + (f" since {since}" if since else ""))


def day_splits(day: np.ndarray, days: np.ndarray, spec: ProblemSpec) -> np.ndarray:
    """The split of each `day` in the window `days`: the newest `test_days` are test, the
    `validation_days` before them validation, the rest train."""
    t = spec.training
    test_days, val_days = days[-t.test_days:], days[-(t.test_days + t.validation_days):-t.test_days]
    return np.where(np.isin(day, test_days), "test", np.where(np.isin(day, val_days), "validation", "train"))


def assign_splits(frame: pd.DataFrame, days: np.ndarray, spec: ProblemSpec) -> pd.DataFrame:
    """The `split` column by day; every split needs both classes."""
    frame["split"] = day_splits(frame[spec.data.time_column].to_numpy().astype("datetime64[D]"), days, spec)
    _check_classes(frame, spec)
    return frame


def concat_partitions(partitions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A window of daily partitions as one frame; no partitions yet is an empty frame, not an error."""
    return pd.concat(partitions.values(), ignore_index=True) if partitions else pd.DataFrame()


def training_days(frame: pd.DataFrame, spec: ProblemSpec) -> list[str]:
    """The days a training set covers (its lineage); empty for data without a time column."""
    if not spec.data.time_column:
        return []
    return sorted(frame[spec.data.time_column].dt.strftime("%Y-%m-%d").unique())


def split_static(frame: pd.DataFrame, spec: ProblemSpec, seed: int, shares=(0.7, 0.15, 0.15)) -> pd.DataFrame:
    """Seeded random split for data without a time order (stratified for classification)."""
    if len(frame) < 20:
        raise ValueError(f"{len(frame)} rows are too few to split into train/validation/test")
    stratify = frame[spec.data.target] if spec.task != "regression" else None
    rest, test = train_test_split(frame.index, test_size=shares[2], random_state=seed, stratify=stratify)
    rest_stratify = frame.loc[rest, spec.data.target] if stratify is not None else None
    _train, val = train_test_split(rest, test_size=shares[1] / (shares[0] + shares[1]), random_state=seed,
                                  stratify=rest_stratify)
    out = frame.copy()
    out["split"] = "train"
    out.loc[val, "split"], out.loc[test, "split"] = "validation", "test"
    _check_classes(out, spec)
    return out

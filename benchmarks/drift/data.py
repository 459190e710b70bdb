"""The benchmark's data: 10 numeric + 4 categorical columns, with shifts in a few of them.

Shifts cover every kind of verdict: clear mean/scale shifts, a shift just under the threshold,
a low-cardinality numeric column (tested on frequencies), nulls, a new category, a re-weighted
category, and untouched columns."""

import numpy as np
import pandas as pd

NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
_LEVELS = np.array([f"level_{i}" for i in range(12)], dtype=object)


def make_frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = 1.0 if drifted else 0.0
    columns = {
        "num_0": rng.normal(0.3 * shift, 1.0, rows),  # clear mean shift
        "num_1": rng.normal(0.0, 1.0 + 0.5 * shift, rows),  # scale change
        "num_2": rng.normal(0.03 * shift, 1.0, rows),  # under the threshold
        "num_3": rng.lognormal(3.0, 0.5, rows),
        "num_4": np.round(rng.gamma(2.0, 20.0, rows), 2),  # ties
        "num_5": rng.uniform(0, 100, rows),
        "num_6": rng.integers(0, 72, rows).astype(float),
        "num_7": rng.choice([1.0, 2.0, 3.0, 4.0], rows, p=[0.4, 0.3, 0.2, 0.1] if not drifted else [0.25, 0.25, 0.25, 0.25]),
        "num_8": rng.exponential(10.0, rows) * (1.2 if drifted else 1.0),
        "num_9": rng.normal(50, 10, rows),
    }
    columns["num_9"][rng.random(rows) < 0.05] = np.nan  # nulls are dropped before testing
    columns["cat_0"] = rng.choice(_LEVELS[:4], rows)
    if drifted:
        columns["cat_0"][rng.random(rows) < 0.2] = "level_new"  # unseen category
    columns["cat_1"] = rng.choice(_LEVELS[:3], rows, p=[0.6, 0.3, 0.1] if not drifted else [0.4, 0.4, 0.2])
    columns["cat_2"] = rng.choice(_LEVELS, rows)
    columns["cat_3"] = rng.choice(_LEVELS[:2], rows, p=[0.7, 0.3])
    return pd.DataFrame(columns)

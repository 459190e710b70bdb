"""The user's simulated feed: a day of applications, and their outcomes two days later."""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from loans_project.problems import PURPOSES

START, LABEL_DELAY, ROWS = date(2026, 1, 1), 2, 300


def applications(day: int, drift: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(day)
    income = rng.lognormal(10.5 if not drift else 9.8, 0.4, ROWS)
    amount = rng.uniform(1_000, 40_000 if not drift else 80_000, ROWS)
    term = rng.choice([12, 24, 36, 60], ROWS)
    purpose = rng.choice(PURPOSES, ROWS)
    ratio = amount / income
    defaulted = (rng.uniform(size=ROWS) < 1 / (1 + np.exp(-(4 * ratio - 2.5 + (purpose == "business"))))).astype(int)
    day_ = pd.Timestamp(START + timedelta(days=day))
    ids = [f"A{day:03d}-{i:04d}" for i in range(ROWS)]
    frame = pd.DataFrame({"application_id": ids, "applied_on": day_.strftime("%Y-%m-%d"), "amount": amount.round(2),
                          "income": income.round(2), "term_months": term, "purpose": purpose})
    return frame, pd.DataFrame({"application_id": ids, "applied_on": frame["applied_on"], "defaulted": defaulted})


def land(root: Path, day: int, drift_from: int | None = None) -> None:
    """Day `day`'s applications and the outcomes of day - LABEL_DELAY, as upstream would drop them."""
    drops = [("applications", day, 0)] + ([("outcomes", day - LABEL_DELAY, 1)] if day >= LABEL_DELAY else [])
    for name, of_day, part in drops:
        frame = applications(of_day, _drift(of_day, drift_from))[part]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / f"{name}_{START + timedelta(days=of_day)}.csv", index=False)


def _drift(day: int, drift_from: int | None) -> bool:
    return drift_from is not None and day >= drift_from

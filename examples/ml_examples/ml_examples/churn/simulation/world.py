"""A deterministic churn world standing in for the company's systems.

Every simulated day lands a file of customer snapshots; the labels for a day's snapshots
(did the customer churn within the horizon) land `label_delay_days` later in their own file.
The ground truth is a hidden logistic model with non-linear effects and interactions, so model
choice and tuning matter. Named scenarios change the world from a given day on.

Each day is generated from its own seed (`[seed, day]`), so any day is reproducible on its own,
whatever range is simulated around it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml_assets.core.experiments import CHALLENGER_ARM, arm_of
from ml_assets.core.storage import Location, as_path, is_local

CONTRACTS = np.array(["month_to_month", "one_year", "two_year"])
PAYMENTS = np.array(["electronic_check", "mailed_check", "bank_transfer", "credit_card"])
INTERNET = np.array(["dsl", "fiber_optic", "none"])
REGIONS = np.array(["north", "south", "east", "west"])

SCENARIOS = {
    "price_shock": "covariate shift: monthly charges rise 25% for internet customers",
    "new_segment": "a new 'metro' region segment (unseen category) with its own behaviour",
    "concept_drift": "the churn relationship changes (support calls stop mattering, region does)",
    "quality_incident": "upstream bug: ~30% of monthly_charges arrive null or as garbage text",
    "schema_change": "upstream renames monthly_charges to MonthlyCharges (file-level failure)",
}


@dataclass(frozen=True)
class ScenarioStart:
    name: str
    day: int

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; choose one of {sorted(SCENARIOS)}")
        if self.day < 0:
            raise ValueError(f"scenario {self.name!r} must start on day >= 0, got {self.day}")


def parse_scenario(text: str) -> ScenarioStart:
    """Parse 'name@day', e.g. 'price_shock@45'."""
    match = re.fullmatch(r"([a-z_]+)@(\d+)", text.strip())
    if not match:
        raise ValueError(f"scenario must look like 'price_shock@45', got {text!r}")
    return ScenarioStart(match.group(1), int(match.group(2)))


@dataclass(frozen=True)
class ArmEffect:
    """Gives an online experiment a known right answer: the labels of the entities the experiment
    routes to its challenger (the same sticky hash the service uses) change by `effect`.

    effect > 0: that share of those labels follows the likelier outcome (p >= 0.5), so whatever
    answers them is right more often — the challenger arm truly does better, as a model that
    drives better interventions would. effect < 0: that share follows the less likely outcome —
    the challenger arm truly does worse. 0 is an A/A world. Shadow experiments score every entity
    with both models, so an arm effect does not concern them."""

    experiment_id: str
    challenger_share: float
    effect: float  # in [-1, 1]

    def __post_init__(self) -> None:
        if not -1 <= self.effect <= 1:
            raise ValueError(f"ArmEffect.effect must lie in [-1, 1], got {self.effect}")

    def apply(self, ids: pd.Series, p: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        routed = np.array([arm_of(i, self.experiment_id, self.challenger_share) == CHALLENGER_ARM for i in ids])
        hit = routed & (rng.random(len(labels)) < abs(self.effect))
        likely = (p >= 0.5).astype(labels.dtype)
        return np.where(hit, likely if self.effect > 0 else 1 - likely, labels)


@dataclass(frozen=True)
class WorldConfig:
    start_date: date
    seed: int = 7
    population: int = 20_000
    rows_per_day: int = 1_500
    label_delay_days: int = 7
    dirty_rate: float = 0.002  # a realistic trickle of bad rows, so quarantine is never hypothetical
    scenarios: tuple[ScenarioStart, ...] = field(default_factory=tuple)
    file_format: str = "csv"
    arm_effect: ArmEffect | None = None  # an online experiment with a known answer

    def __post_init__(self) -> None:
        if self.rows_per_day > self.population:
            raise ValueError("rows_per_day cannot exceed population (snapshots are unique per day)")
        if self.file_format not in ("csv", "parquet"):
            raise ValueError(f"file_format must be 'csv' or 'parquet', got {self.file_format!r}")

    def active(self, name: str, day: int) -> bool:
        return any(s.name == name and day >= s.day for s in self.scenarios)

    def day_date(self, day: int) -> date:
        return self.start_date + timedelta(days=day)


def _population(cfg: WorldConfig) -> pd.DataFrame:
    rng = np.random.default_rng([cfg.seed, 0xC057])
    n = cfg.population
    internet = rng.choice(INTERNET, n, p=[0.35, 0.45, 0.20])
    products = 1 + rng.poisson(1.0, n)
    base = 20 + 25 * (internet == "dsl") + 50 * (internet == "fiber_optic") + 8 * products
    return pd.DataFrame({
        "customer_id": np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7)),
        "tenure0": np.clip(rng.exponential(24, n), 0, 72).astype(int),
        "contract": rng.choice(CONTRACTS, n, p=[0.55, 0.25, 0.20]),
        "payment_method": rng.choice(PAYMENTS, n, p=[0.35, 0.20, 0.22, 0.23]),
        "internet_service": internet,
        "num_products": np.minimum(products, 8),
        "base_charges": base + rng.normal(0, 6, n),
        "is_senior": (rng.random(n) < 0.16).astype(int),
        "has_partner": (rng.random(n) < 0.48).astype(int),
        "region": rng.choice(REGIONS, n, p=[0.30, 0.25, 0.25, 0.20]),
    })


def _snapshot(cfg: WorldConfig, day: int, pop: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = pop.iloc[np.sort(rng.choice(len(pop), cfg.rows_per_day, replace=False))].reset_index(drop=True)
    n = len(rows)
    if cfg.active("new_segment", day):
        seg = rng.random(n) < 0.35
        rows.loc[seg, "region"] = "metro"
        rows.loc[seg, "tenure0"] = rng.integers(0, 8, seg.sum())
        rows.loc[seg, "base_charges"] += 25
    tenure = rows["tenure0"].to_numpy() + day // 30
    charges = rows["base_charges"].to_numpy() + rng.normal(0, 2, n)
    if cfg.active("price_shock", day):
        charges = np.where(rows["internet_service"] != "none", charges * 1.25, charges)
    charges = np.round(np.clip(charges, 5, None), 2)
    lam = 0.6 + 1.0 * (rows["internet_service"] == "fiber_optic") + 0.4 * rows["is_senior"]
    total = np.round(charges * tenure * rng.uniform(0.92, 1.08, n), 2)
    return pd.DataFrame({
        "customer_id": rows["customer_id"],
        "snapshot_date": cfg.day_date(day).isoformat(),
        "tenure_months": tenure,
        "contract": rows["contract"],
        "monthly_charges": charges,
        "total_charges": np.where(tenure == 0, np.nan, total),
        "payment_method": rows["payment_method"],
        "internet_service": rows["internet_service"],
        "support_calls": rng.poisson(lam.to_numpy()),
        "num_products": rows["num_products"],
        "is_senior": rows["is_senior"],
        "has_partner": rows["has_partner"],
        "region": rows["region"],
    })


def churn_probability(snap: pd.DataFrame, concept_drift: bool = False) -> np.ndarray:
    """The hidden ground truth: non-linear in tenure and calls, with interactions."""
    m2m = (snap["contract"] == "month_to_month").to_numpy()
    two_year = (snap["contract"] == "two_year").to_numpy()
    fiber = (snap["internet_service"] == "fiber_optic").to_numpy()
    tenure = snap["tenure_months"].to_numpy(dtype=float)
    calls = snap["support_calls"].to_numpy(dtype=float)
    charges = snap["monthly_charges"].to_numpy(dtype=float)
    e_check = (snap["payment_method"] == "electronic_check").to_numpy()
    z = (-1.4 + 1.3 * m2m - 1.0 * two_year - 0.9 * np.log1p(tenure)
         + 2.6 * fiber / (1 + np.exp(-(charges - 95) / 4))  # fiber customers balk past a price point
         - 1.2 * (np.abs(charges - 50) < 8)  # a well-liked mid-price plan: not monotone in charges
         + 1.6 * snap["is_senior"].to_numpy() * e_check
         - 0.3 * snap["has_partner"].to_numpy()
         - 0.25 * (snap["num_products"].to_numpy() - 1)
         + 1.2 * m2m * (tenure < 6))
    if concept_drift:
        z += -1.2 * m2m + 1.4 * (snap["region"] == "south").to_numpy() + 0.8 * two_year
    else:
        z += 2.2 * (calls >= 4) + 0.1 * np.minimum(calls, 6)  # a threshold, not a slope
    z += 0.8 * (snap["region"] == "metro").to_numpy()
    return 1 / (1 + np.exp(-z))


def _inject_dirty_rows(snap: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    """Corrupt a few rows the way real upstream systems do."""
    n_bad = rng.binomial(len(snap), rate)
    if n_bad == 0:
        return snap
    out = snap.astype({"tenure_months": object, "monthly_charges": object})
    for i, kind in zip(rng.choice(len(out), n_bad, replace=False), rng.integers(0, 4, n_bad)):
        column, value = [("tenure_months", -3), ("contract", "weekly"),
                         ("customer_id", None), ("monthly_charges", "n/a")][kind]
        out.at[i, column] = value
    return out


def _quality_incident(snap: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = snap.astype({"monthly_charges": object})
    hit = rng.random(len(out)) < 0.3
    out.loc[hit, "monthly_charges"] = np.where(rng.random(hit.sum()) < 0.5, None, "#ERR")
    return out


def simulate_day(cfg: WorldConfig, day: int, pop: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (landing customers file content, labels for that day's snapshots)."""
    pop = _population(cfg) if pop is None else pop
    snap = _snapshot(cfg, day, pop, np.random.default_rng([cfg.seed, day]))
    p = churn_probability(snap, concept_drift=cfg.active("concept_drift", day))
    label_rng = np.random.default_rng([cfg.seed, day, 1])
    churned = (label_rng.random(len(snap)) < p).astype(int)
    if cfg.arm_effect is not None:
        churned = cfg.arm_effect.apply(snap["customer_id"], p, churned, np.random.default_rng([cfg.seed, day, 4]))
    labels = snap[["customer_id", "snapshot_date"]].assign(churned=churned)
    landed = _inject_dirty_rows(snap, cfg.dirty_rate, np.random.default_rng([cfg.seed, day, 2]))
    if cfg.active("quality_incident", day):
        landed = _quality_incident(landed, np.random.default_rng([cfg.seed, day, 3]))
    if cfg.active("schema_change", day):
        landed = landed.rename(columns={"monthly_charges": "MonthlyCharges"})
    return landed, labels


def _write_atomic(df: pd.DataFrame, path: Location, file_format: str) -> None:
    """A watcher never sees a half-written file: locally a temp name, then a rename; on object
    storage one PUT, which makes the object appear whole."""
    if file_format != "csv":
        mixed = [c for c in df.columns if df[c].dtype == object]
        df = df.astype({c: "string" for c in mixed})
    if not is_local(path):
        with path.open("wb") as fh:
            df.to_csv(fh, index=False) if file_format == "csv" else df.to_parquet(fh, index=False)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False) if file_format == "csv" else df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_world(cfg: WorldConfig, days: int, out: str | Location, first_day: int = 0) -> list[Location]:
    """Land days [first_day, days) under out/customers and out/labels (a folder or an object-storage
    URL such as s3://bucket/landing); return the files written."""
    pop, written, out = _population(cfg), [], as_path(out)
    ext = cfg.file_format
    for day in range(first_day, days):
        customers, _ = simulate_day(cfg, day, pop)
        stamp = cfg.day_date(day).isoformat()
        written.append(out / "customers" / f"customers_{stamp}.{ext}")
        _write_atomic(customers, written[-1], ext)
        label_day = day - cfg.label_delay_days
        if label_day >= 0:  # labels for snapshots taken `delay` days ago arrive today
            _, labels = simulate_day(cfg, label_day, pop)
            written.append(out / "labels" / f"labels_{stamp}.{ext}")
            _write_atomic(labels, written[-1], ext)
    return written

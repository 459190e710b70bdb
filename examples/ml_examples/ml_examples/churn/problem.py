"""Customer churn, the default problem: data contracts, features and candidate models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series
from scipy.stats import loguniform
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from ml_assets.problem import (
    CandidateSpec,
    DataSection,
    DatasetSpec,
    GateSection,
    MonitoringSection,
    ProblemSpec,
    TrainingSection,
)
from ml_assets.problem.columnwise import columnwise

CONTRACTS = ["month_to_month", "one_year", "two_year"]
PAYMENT_METHODS = ["electronic_check", "mailed_check", "bank_transfer", "credit_card"]
INTERNET_SERVICES = ["dsl", "fiber_optic", "none"]
_ID = {"str_length": {"min_value": 1, "max_value": 64}}
_EARLIEST = pd.Timestamp("2000-01-01")


class ChurnCustomers(pa.DataFrameModel):
    """One customer snapshot on one day, as validated from the landing file."""

    customer_id: Series[str] = pa.Field(**_ID, description="stable customer key")
    snapshot_date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, description="day of the snapshot")
    tenure_months: Series[int] = pa.Field(ge=0, le=600)
    contract: Series[pd.CategoricalDtype] = pa.Field(isin=CONTRACTS)
    monthly_charges: Series[float] = pa.Field(gt=0, le=10_000)
    total_charges: Series[float] = pa.Field(ge=0, le=10_000_000, nullable=True,
                                            description="null for brand-new customers")
    payment_method: Series[pd.CategoricalDtype] = pa.Field(isin=PAYMENT_METHODS)
    internet_service: Series[pd.CategoricalDtype] = pa.Field(isin=INTERNET_SERVICES)
    support_calls: Series[int] = pa.Field(ge=0, le=100, description="support calls, last 30 days")
    num_products: Series[int] = pa.Field(ge=1, le=20)
    is_senior: Series[int] = pa.Field(isin=[0, 1])
    has_partner: Series[int] = pa.Field(isin=[0, 1])
    # An open domain on purpose: new regions are a business event (drift), not bad data.
    region: Series[pd.CategoricalDtype] = pa.Field(str_matches=r"^[a-z][a-z_]{0,31}$")

    class Config:
        strict = True
        unique = ["customer_id", "snapshot_date"]


class ChurnLabels(pa.DataFrameModel):
    """Whether a customer snapshot churned within the horizon; lands days after the snapshot."""

    customer_id: Series[str] = pa.Field(**_ID)
    snapshot_date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST)
    churned: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True
        unique = ["customer_id", "snapshot_date"]


CUSTOMERS = DatasetSpec(name="customers", model=ChurnCustomers, date_column="snapshot_date")
LABELS = DatasetSpec(name="labels", model=ChurnLabels, date_column="snapshot_date")
DATASETS = (CUSTOMERS, LABELS)

NUMERIC = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products",
           "is_senior", "has_partner", "charges_per_product", "avg_charge_to_date", "charge_gap")
CATEGORICAL = ("contract", "payment_method", "internet_service", "region")


class ChurnFeatures(pa.DataFrameModel):
    """Model inputs for one customer snapshot (the same columns serve training and scoring)."""

    customer_id: Series[str]
    snapshot_date: Series[pd.Timestamp]
    tenure_months: Series[float] = pa.Field(ge=0)
    monthly_charges: Series[float] = pa.Field(gt=0)
    total_charges: Series[float] = pa.Field(nullable=True)
    support_calls: Series[float] = pa.Field(ge=0)
    num_products: Series[float] = pa.Field(ge=1)
    is_senior: Series[float] = pa.Field(isin=[0, 1])
    has_partner: Series[float] = pa.Field(isin=[0, 1])
    charges_per_product: Series[float] = pa.Field(gt=0)
    avg_charge_to_date: Series[float] = pa.Field(nullable=True, description="null for new customers")
    charge_gap: Series[float] = pa.Field(nullable=True, description="current vs average charge: price moves")
    contract: Series[str]
    payment_method: Series[str]
    internet_service: Series[str]
    region: Series[str]

    class Config:
        strict = True


def _floats(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == object:  # a nullable integer column: pd.NA/None are missing
        return pd.array(values).to_numpy(dtype=float, na_value=np.nan)
    return values.astype(float)


def churn_feature_arrays(customers):
    """Validated customer snapshots -> model features, column arrays in and out (pure; training,
    batch and online scoring share it through `build_churn_features`)."""
    numeric = {c: _floats(customers[c]) for c in NUMERIC[:7]}
    tenure = np.where(numeric["tenure_months"] > 0, numeric["tenure_months"], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        numeric["charges_per_product"] = numeric["monthly_charges"] / numeric["num_products"]
        numeric["avg_charge_to_date"] = numeric["total_charges"] / tenure
        numeric["charge_gap"] = numeric["monthly_charges"] - numeric["avg_charge_to_date"]
    # ids and dates copied: the features frame owns every array, so it is built without copying them again
    columns = {"customer_id": np.array(customers["customer_id"], dtype=object),
               "snapshot_date": np.array(customers["snapshot_date"]),
               **{c: np.where(np.isinf(v), np.nan, v) for c, v in numeric.items()}}
    for column in CATEGORICAL:  # plain strings: categories differ between days, strings do not
        columns[column] = _text(customers[column])
    return columns


def _text(values: np.ndarray) -> np.ndarray:
    """Category values (str, validated by the input contract) as an object array, missing as "nan"
    (what astype(str) makes of it) without a str() call per value."""
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values)
    if not missing.any():
        return values
    out = values.copy()
    out[missing] = "nan"
    return out


# The DataFrame -> DataFrame function the pipeline calls; the scoring service calls the arrays
# function directly (no DataFrame per request batch).
build_churn_features = columnwise(churn_feature_arrays)


CANDIDATES = (
    CandidateSpec("logistic_regression", lambda seed: LogisticRegression(max_iter=2000, random_state=seed),
                  {"C": loguniform(1e-2, 1e2)}),
    CandidateSpec("hist_gradient_boosting", lambda seed: HistGradientBoostingClassifier(random_state=seed),
                  {"learning_rate": [0.03, 0.06, 0.1, 0.2], "max_leaf_nodes": [15, 31, 63],
                   "min_samples_leaf": [20, 50, 100], "l2_regularization": [0.0, 0.1, 1.0]}),
    CandidateSpec("random_forest", lambda seed: RandomForestClassifier(n_estimators=80, random_state=seed),
                  {"max_depth": [8, 12, 16], "min_samples_leaf": [5, 20, 50], "max_features": ["sqrt", 0.3]}),
)

CHURN = ProblemSpec(
    name="churn", task="binary",
    data=DataSection(target="churned", id_column="customer_id", time_column="snapshot_date", numeric_features=NUMERIC,
                     categorical_features=CATEGORICAL, build_features=build_churn_features, features_model=ChurnFeatures,
                     inputs=CUSTOMERS, labels=LABELS, segment_columns=("contract", "region")),
    training=TrainingSection(candidates=CANDIDATES, primary_metric="roc_auc", validation_days=3, test_days=3),
    gate=GateSection(metric_floor=0.75),
    # below Evidently's 0.5: a new segment moves 6 of the 14 features, and that is drift
    monitoring=MonitoringSection(drift_share=0.4),
    ref="ml_examples.churn.problem:CHURN")


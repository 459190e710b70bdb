"""Two problems that are not churn-shaped: their own datasets, names, metric and task."""

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ml_assets.problem import (
    DataSection,
    DatasetSpec,
    GateSection,
    ProblemSpec,
    RetrainingSection,
    TrainingSection,
)

PURPOSES = ["car", "home", "education", "business"]


class Applications(pa.DataFrameModel):
    application_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 32})
    applied_on: Series[pd.Timestamp]
    amount: Series[float] = pa.Field(gt=0, le=1_000_000)
    income: Series[float] = pa.Field(gt=0, le=10_000_000)
    term_months: Series[int] = pa.Field(isin=[12, 24, 36, 60])
    purpose: Series[pd.CategoricalDtype] = pa.Field(isin=PURPOSES)

    class Config:
        strict = True
        unique = ["application_id", "applied_on"]


class Outcomes(pa.DataFrameModel):
    application_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 32})
    applied_on: Series[pd.Timestamp]
    defaulted: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True
        unique = ["application_id", "applied_on"]


class LoanFeatures(pa.DataFrameModel):
    application_id: Series[str]
    applied_on: Series[pd.Timestamp]
    amount: Series[float]
    income: Series[float]
    term_months: Series[float]
    debt_to_income: Series[float] = pa.Field(ge=0)
    purpose: Series[str]

    class Config:
        strict = True


def loan_features(applications: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "application_id": applications["application_id"], "applied_on": applications["applied_on"],
        "amount": applications["amount"].astype(float), "income": applications["income"].astype(float),
        "term_months": applications["term_months"].astype(float),
        "debt_to_income": applications["amount"].astype(float) / applications["income"].astype(float),
        "purpose": applications["purpose"].astype(str)})


LOANS = ProblemSpec(
    name="loans", task="binary",
    data=DataSection(target="defaulted", id_column="application_id", time_column="applied_on",
                     numeric_features=("amount", "income", "term_months", "debt_to_income"),
                     categorical_features=("purpose",), build_features=loan_features, features_model=LoanFeatures,
                     inputs=DatasetSpec("applications", Applications, "applied_on"),
                     labels=DatasetSpec("outcomes", Outcomes, "applied_on"), partitions_start="2026-01-01"),
    training=TrainingSection(primary_metric="average_precision", validation_days=2, test_days=2, window_days=30),
    gate=GateSection(metric_floor=0.2, latency_budget_ms=2_000),
    retraining=RetrainingSection(min_labeled_days=5))


def _houses() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rooms, area, age = rng.integers(1, 8, 400), rng.uniform(30, 250, 400), rng.uniform(0, 80, 400)
    price = 1_000 * area + 15_000 * rooms - 800 * age + rng.normal(0, 10_000, 400)
    return pd.DataFrame({"house_id": np.arange(400), "rooms": rooms.astype(float), "area": area, "age": age,
                         "price": price})


def houses() -> ProblemSpec:
    """A function returning the spec: the reference may name either."""
    schema = pa.DataFrameSchema({"house_id": pa.Column(int, unique=True), "rooms": pa.Column(float),
                                 "area": pa.Column(float), "age": pa.Column(float), "price": pa.Column(float)},
                                strict=True)
    return ProblemSpec(name="houses", task="regression",
                       data=DataSection(target="price", id_column="house_id", numeric_features=("rooms", "area", "age"),
                                        features_model=schema, load_static=_houses),
                       training=TrainingSection(search_iterations=1, cv_folds=2))

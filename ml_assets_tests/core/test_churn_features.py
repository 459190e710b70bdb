"""The churn features, built with numpy for speed, equal the plain pandas definition exactly."""

import io

import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.problem import CATEGORICAL, NUMERIC, ChurnFeatures, build_churn_features

from ml_assets_tests.core.churn_data import validated_day


def _plain(customers: pd.DataFrame) -> pd.DataFrame:
    """The definition, one pandas operation per column (slow on a million rows)."""
    out = pd.DataFrame({"customer_id": customers["customer_id"].astype(object),
                        "snapshot_date": customers["snapshot_date"]})
    for column in NUMERIC[:7]:
        out[column] = customers[column].astype(float)
    tenure = out["tenure_months"].where(out["tenure_months"] > 0)
    out["charges_per_product"] = (out["monthly_charges"] / out["num_products"]).replace([np.inf, -np.inf], np.nan)
    out["avg_charge_to_date"] = (out["total_charges"] / tenure).replace([np.inf, -np.inf], np.nan)
    out["charge_gap"] = out["monthly_charges"] - out["avg_charge_to_date"]
    for column in CATEGORICAL:
        out[column] = customers[column].astype(str).astype(object)
    return out


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> pd.DataFrame:
    return validated_day(tmp_path_factory.mktemp("landing"))


def _edges(day: pd.DataFrame) -> pd.DataFrame:
    """Zero tenure and products (division by zero), a missing total and a missing category."""
    out = day.copy()
    out.loc[0, "tenure_months"], out.loc[1, "num_products"], out.loc[2, "total_charges"] = 0, 0, np.nan
    out["region"] = out["region"].cat.add_categories(["unused"])
    out.loc[3, "region"] = np.nan
    return out


def _from_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pd.read_parquet(io.BytesIO(buffer.getvalue()))


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    """As the service builds request frames: object text, categoricals from the values."""
    out = frame.astype({"customer_id": object})
    for column in CATEGORICAL:
        out[column] = pd.Categorical(frame[column].astype(object))
    return out


@pytest.mark.parametrize("prepare", [lambda d: d, _edges, _from_parquet, _records,
                                     lambda d: d.astype({c: object for c in CATEGORICAL}).iloc[::-1]],
                         ids=["validated", "edge-values", "read-back", "request-records", "object-text-reversed"])
def test_features_equal_the_plain_pandas_definition(day, prepare):
    customers = prepare(day)
    built = build_churn_features(customers)
    pd.testing.assert_frame_equal(built, _plain(customers))
    assert built.index.equals(customers.index)


def test_features_own_their_memory(day):
    """Built with copy=False: changing the features must not change the input frame."""
    customers = _records(day)
    built = build_churn_features(customers)
    built.loc[0, "customer_id"] = "changed"
    built["snapshot_date"] = built["snapshot_date"].values
    built["snapshot_date"].to_numpy()[0] = np.datetime64("1999-01-01")
    assert customers.loc[0, "customer_id"] == day.loc[0, "customer_id"]
    assert customers.loc[0, "snapshot_date"] == day.loc[0, "snapshot_date"]
    ChurnFeatures.validate(build_churn_features(day))

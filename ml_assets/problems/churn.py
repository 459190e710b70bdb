"""Customer churn, the default problem: contracts of the landed customer and label files."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ml_assets.problems.spec import DatasetSpec

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

"""The Dagster types of the validated and features outputs: faster than dagster-pandera, the same
verdicts. A wrong frame is rejected with a message naming the column and the check."""

import gc
from decimal import Decimal

import dagster as dg
import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pytest
from ml_examples.churn.problem import CUSTOMERS, ChurnFeatures, build_churn_features
from ml_examples.problems import example_problems

from ml_assets.assets import types as types_module
from ml_assets.assets.types import dagster_type, keys_enforced, proven_schema
from ml_assets.definitions import build_definitions
from ml_assets_tests.core.churn_data import validated_day


@pytest.fixture(scope="module")
def validated(tmp_path_factory) -> pd.DataFrame:
    return validated_day(tmp_path_factory.mktemp("landing"))


@pytest.fixture(scope="module")
def features(validated) -> pd.DataFrame:
    return build_churn_features(validated)


def _set(frame: pd.DataFrame, column: str, row: int, value, dtype=None) -> pd.DataFrame:
    out = frame.copy()
    if dtype is not None:
        out[column] = out[column].astype(dtype)
    out.loc[row, column] = value
    return out


def _rejected(schema, frame: pd.DataFrame) -> str:
    check = dagster_type(schema).type_check(None, frame)
    assert not check.success
    return check.description


def test_the_outputs_of_the_real_assets_use_these_types(validated, features):
    defs = build_definitions(example_problems(), {})
    outs = defs.resolve_assets_def("validated_customers").op.outs
    typed = {"validated": outs["validated_customers"].dagster_type,
             "features": defs.resolve_assets_def(dg.AssetKey(["churn", "features"])).op.outs["result"].dagster_type}
    assert typed == {"validated": dagster_type(CUSTOMERS.model), "features": dagster_type(ChurnFeatures)}
    assert typed["validated"].type_check(None, validated).success
    assert typed["features"].type_check(None, features).success
    assert "customer_id" in typed["validated"].type_check(None, validated.drop(columns="customer_id")).description
    assert "Must be a pandas DataFrame" in typed["features"].type_check(None, features.to_dict()).description


@pytest.mark.parametrize("mutate, column, check", [
    (lambda v: v.assign(tenure_months=v.tenure_months.astype(float)), "tenure_months", "dtype('int64')"),
    (lambda v: _set(v, "customer_id", 3, 7, object), "customer_id", "dtype('str')"),
    (lambda v: _set(v, "customer_id", 3, None, object), "customer_id", "not_nullable"),
    (lambda v: v.drop(columns="region"), "region", "column_in_dataframe"),
    (lambda v: pd.concat([v, v.iloc[[5]]], ignore_index=True), "customer_id", "multiple_fields_uniqueness"),
    (lambda v: _set(v, "tenure_months", 4, -1), "tenure_months", "greater_than_or_equal_to(0)"),
    (lambda v: _set(v, "customer_id", 4, "x" * 65), "customer_id", "str_length(1, 64)"),
    (lambda v: v.assign(extra=1), "extra", "column_in_schema"),
], ids=["wrong-dtype", "not-a-str", "null-id", "missing-column", "duplicated-id", "below-ge", "too-long", "strict"])
def test_a_wrong_validated_frame_is_rejected_naming_column_and_check(validated, mutate, column, check):
    message = _rejected(CUSTOMERS.model, mutate(validated))
    assert f'"column": "{column}"' in message or f"'{column}'" in message
    assert check in message


@pytest.mark.parametrize("mutate, column, check", [
    (lambda f: _set(f, "region", 2, 3), "region", "dtype('str')"),
    (lambda f: f.assign(snapshot_date=f.snapshot_date.astype(str)), "snapshot_date", "dtype('datetime64[ns]')"),
    (lambda f: _set(f, "customer_id", 2, None), "customer_id", "not_nullable"),
    (lambda f: f.drop(columns="charge_gap"), "charge_gap", "column_in_dataframe"),
    (lambda f: _set(f, "is_senior", 1, 2.0), "is_senior", "isin([0, 1])"),
    (lambda f: _set(f, "charges_per_product", 1, -3.0), "charges_per_product", "greater_than(0)"),
    (lambda f: f.assign(num_products=f.num_products.astype(np.int64)), "num_products", "dtype('float64')"),
], ids=["not-a-str", "text-not-datetime", "null-id", "missing-column", "outside-isin", "not-positive", "int-not-float"])
def test_a_wrong_features_frame_is_rejected_naming_column_and_check(features, mutate, column, check):
    message = _rejected(ChurnFeatures, mutate(features))
    assert f'"column": "{column}"' in message
    assert check in message


def _failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> set | None:
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases.astype(str)
        return set(map(tuple, cases[["column", "check", "failure_case", "index"]].to_numpy()))
    return None


STR_SCHEMA = pa.DataFrameSchema({"id": pa.Column(str), "note": pa.Column(str, nullable=True),
                                 "code": pa.Column(str, pa.Check.str_length(max_value=3))}, strict=True)
EDGE_VALUES = {  # each stands in column "note" of an otherwise valid frame
    "none": None, "nan": np.nan, "pd.NA": pd.NA, "NaT": pd.NaT, "datetime64 NaT": np.datetime64("NaT"),
    "Decimal NaN": Decimal("NaN"), "np.str_": np.str_("a"), "int": 1, "bytes": b"a", "float": 1.5}


@pytest.mark.parametrize("column", ["id", "note", "code"])
@pytest.mark.parametrize("name", list(EDGE_VALUES))
def test_the_vectorised_proofs_never_change_pandera_s_verdict(name, column):
    """What proven_schema leaves out must be exactly what pandera would have passed: same failures."""
    frame = pd.DataFrame({"id": ["a", "b", "c"], "note": ["x", "y", "z"], "code": ["p", "q", "r"]}, dtype=object)
    frame.loc[1, column] = EDGE_VALUES[name]
    assert _failures(proven_schema(STR_SCHEMA, frame), frame) == _failures(STR_SCHEMA, frame)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"id": ["a", None], "note": [None, None], "code": ["ab", "abcd"]}, dtype="string[python]"),
    pd.DataFrame({"id": ["a", "b"], "note": ["c", None], "code": ["ab", "ab"]}, dtype="string[pyarrow]"),
    pd.DataFrame({"id": pd.Categorical(["a", "b"]), "note": [1, 2], "code": ["x", "y"]}),
    pd.DataFrame({"id": [], "note": [], "code": []}, dtype=object),
    pd.DataFrame({"id": [None, None], "note": [None, None], "code": [None, None]}, dtype=object),
], ids=["string-python", "string-pyarrow", "category-and-int", "empty", "all-null"])
def test_the_proofs_agree_with_pandera_on_other_dtypes(frame):
    assert _failures(proven_schema(STR_SCHEMA, frame), frame) == _failures(STR_SCHEMA, frame)


def test_the_features_frame_is_checked_without_touching_it(features):
    before = features.copy()
    assert dagster_type(ChurnFeatures).type_check(None, features).success
    pd.testing.assert_frame_equal(features, before)
    assert "pandera" not in vars(features)  # the schema pandera attaches went to a shallow copy


def test_a_coercing_schema_is_validated_on_a_copy_as_pandera_does():
    schema = pa.DataFrameSchema({"n": pa.Column(float, coerce=True)}, name="CoercingForTypesTest")
    frame = pd.DataFrame({"n": [1, 2]})
    assert dagster_type(schema).type_check(None, frame).success
    assert frame["n"].dtype == np.int64  # the output value is never coerced in place


def test_a_wrong_frame_fails_the_step_in_a_run(features):
    @dg.asset(dagster_type=dagster_type(ChurnFeatures))
    def bad_features() -> pd.DataFrame:
        return _set(features, "is_senior", 0, 5.0)

    result = dg.materialize([bad_features], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "is_senior" in str(failure.event_specific_data.error) and "isin([0, 1])" in str(
        failure.event_specific_data.error)


def test_the_validator_s_key_result_is_reused_for_that_frame_only(validated):
    """The validated output's unique key was enforced by the validator on exactly those rows; the
    record skips re-hashing the keys for that object, never for a frame made from it."""
    repeated = keys_enforced(pd.concat([validated, validated.iloc[[5]]], ignore_index=True))
    assert dagster_type(CUSTOMERS.model).type_check(None, repeated).success  # trusted: the record is what skips it
    for derived in (repeated.copy(), pd.concat([repeated], ignore_index=True), repeated.iloc[:]):
        assert "multiple_fields_uniqueness" in _rejected(CUSTOMERS.model, derived)
    assert "tenure_months" in _rejected(CUSTOMERS.model, keys_enforced(_set(validated, "tenure_months", 4, -1)))


def test_the_record_goes_with_its_frame(validated):
    frame = keys_enforced(validated.copy())
    key = id(frame)
    assert key in types_module._ENFORCED
    del frame
    gc.collect()
    assert key not in types_module._ENFORCED

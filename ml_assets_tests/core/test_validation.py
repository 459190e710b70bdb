from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pytest
from ml_examples.churn.problem import CUSTOMERS

from ml_assets.core.arrow_memory import prefer_jemalloc
from ml_assets.core.day_files import validate_files
from ml_assets.core.ingest import ParsedBatch
from ml_assets.core.validation import _failures, split_valid_rows
from ml_assets_tests.core.corpus import CLEAN_ROWS, csv_text, replace_field


def test_a_day_of_several_files_dedups_across_files(tmp_path):
    first, second = tmp_path / "customers_2026-01-05.csv", tmp_path / "customers_2026-01-05_b.csv"
    first.write_text(csv_text(CLEAN_ROWS[:3]))
    second.write_text(csv_text([CLEAN_ROWS[2], CLEAN_ROWS[3], replace_field(CLEAN_ROWS[3], 0, "")]))
    result = validate_files([first, second], CUSTOMERS.schema, {"snapshot_date": date(2026, 1, 5)})
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (6, 4, 2)
    assert result.reason_counts == {"customer_id:not_nullable": 1, "customer_id+snapshot_date:unique": 1}
    moved = result.quarantine[result.quarantine.quarantine_reason.str.contains("earlier file")]
    assert moved[["customer_id", "source_file"]].values.tolist() == [["C0000003", second.name]]
    CUSTOMERS.model.validate(result.valid)  # categoricals survive the concat


def test_validate_files_needs_files():
    with pytest.raises(ValueError, match="at least one file"):
        validate_files([], CUSTOMERS.schema)


@pytest.mark.parametrize("check, values", [
    (pa.Check.in_range(0, 10, include_min=False), [0, 5, 10, 11, None]),
    (pa.Check.in_range(0, 10, include_max=False), [0, 5, 10, -1, None]),
    (pa.Check.gt(2), [1, 2, 3, None]),
    (pa.Check.lt(2), [1, 2, 3]),
    (pa.Check.eq(2), [1, 2]),
    (pa.Check.ne(2), [1, 2]),
    (pa.Check.notin([1, 2]), [1, 2, 3]),
    (pa.Check.str_length(2, 3), ["a", "ab", "abcd", None]),
    (pa.Check.str_length(exact_value=2), ["a", "ab"]),
    (pa.Check.str_matches(r"[a-z]+\d"), ["ab1", "1ab", "ab", "xab1z"]),
    (pa.Check.str_startswith("ab"), ["abc", "cab", None]),  # no Arrow translation: pandera evaluates it
    (pa.Check(lambda s: s % 2 == 0, name="even"), [1, 2, 3, 4, None]),  # a custom check, via pandera
    (pa.Check.str_matches(r"a(?=b)"), ["ab", "ac", None]),  # lookahead: RE2 refuses, pandera runs it
])
def test_arrow_evaluation_agrees_with_pandera(check, values):
    series = pd.Series(values)
    arrow = pa_arrow.chunked_array([pa_arrow.array(values)])
    expected = ~check(series.dropna()).check_output.reindex(series.index, fill_value=True)
    np.testing.assert_array_equal(_failures(check, arrow), expected.to_numpy())


def test_checks_on_dictionary_columns_broadcast_per_value():
    arrow = pa_arrow.chunked_array([pa_arrow.array(["a", "b", None, "a"]).dictionary_encode(),
                                    pa_arrow.array(["c", "a"]).dictionary_encode()])
    assert _failures(pa.Check.isin(["a"]), arrow).tolist() == [False, True, False, False, True, False]


def test_quarantine_of_an_all_valid_batch_is_empty_but_typed():
    table = pa_arrow.table({"x": pa_arrow.array([1, 2], type=pa_arrow.int64())})
    schema = pa.DataFrameSchema({"x": pa.Column(int, pa.Check.ge(0))})
    result = split_valid_rows(ParsedBatch(source="f.csv", table=table), schema)
    assert (result.rows_valid, result.rows_quarantined, result.quarantine_rate) == (2, 0, 0.0)
    assert list(result.quarantine.columns) == ["x", "quarantine_reason", "source_file", "source_row"]


def test_valid_ids_stay_arrow_strings_and_load_back_as_text(tmp_path):
    """Keys stay in Arrow memory (no million Python objects) and survive the Parquet round trip."""
    path = tmp_path / "customers_2026-01-05.csv"
    path.write_text(csv_text())
    result = validate_files([path], CUSTOMERS.schema)
    assert result.valid["customer_id"].dtype == pd.StringDtype("pyarrow")
    CUSTOMERS.model.validate(result.valid)  # what Dagster's type check runs on the asset output
    result.valid.to_parquet(tmp_path / "valid.parquet")
    back = pd.read_parquet(tmp_path / "valid.parquet")
    assert back["customer_id"].tolist() == [row.split(",")[0] for row in CLEAN_ROWS]
    CUSTOMERS.model.validate(back)


def test_arrow_allocator_is_jemalloc_unless_the_user_chose(monkeypatch):
    before = pa_arrow.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        pa_arrow.set_memory_pool(pa_arrow.system_memory_pool())
        assert prefer_jemalloc() == "system"  # an explicit choice is left alone
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        assert prefer_jemalloc() == "jemalloc"
    finally:
        pa_arrow.set_memory_pool(before)

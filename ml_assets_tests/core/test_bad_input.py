"""The bad-input corpus: every kind of broken landing file, and exactly what happens to it.

File-level problems raise LandingFileError naming the file, the problem and the fix.
Row-level problems quarantine exactly the bad rows with their reasons; nothing is lost:
rows_in == rows_valid + rows_quarantined == the number of data lines in the file.
"""

import gzip

import pandas as pd
import pyarrow.parquet as pq
import pytest
from ml_examples.churn.problem import CUSTOMERS, LABELS

from ml_assets.core.ingest import LandingFileError, read_landing_file
from ml_assets.core.validation import split_valid_rows
from ml_assets.schemas import quarantine_schema
from ml_assets_tests.core.corpus import (
    CLEAN_HEADER,
    CLEAN_ROWS,
    DAY,
    NAME,
    csv_text,
    replace_field,
    write_landing,
)


def _validate(path, spec=CUSTOMERS):
    result = split_valid_rows(read_landing_file(path, spec.schema), spec.schema, {spec.date_column: DAY})
    assert result.rows_in == result.rows_valid + result.rows_quarantined
    spec.model.validate(result.valid)
    quarantine_schema(spec.model).validate(result.quarantine)
    return result


FILE_LEVEL = {
    "empty file": (b"", "the file is empty"),
    "whitespace only": (b"\n\n  \n", "the file is empty"),
    "header only": (CLEAN_HEADER + "\n", "header but no data rows"),
    "not utf-8 in a value": (csv_text().encode().replace(b"north", b"nor\xf0\x28th"), "not valid UTF-8"),
    "binary garbage (gzip)": (gzip.compress(csv_text().encode()),
                              r"gzip-compressed, not CSV text. Fix: name it 'customers_2026-01-05.csv.gz'"),
    "binary garbage": (b"\x00\x01\x02\xff\xfe" * 50, "not UTF-8 text"),
    "parquet named .csv": (b"PAR1" + b"\x00" * 40, r"a Parquet file, not CSV text. Fix: name it 'customers_2026-01-05.parquet'"),
    "zip named .csv": (b"PK\x03\x04" + b"\x00" * 40, "a zip archive"),
    "CR-only line endings": (csv_text().replace("\n", "\r"), r"carriage return only .* Fix: save the file with LF or CRLF"),
    "semicolon delimiter": (csv_text().replace(",", ";"), "semicolon-separated"),
    "tab delimiter": (csv_text().replace(",", "\t"), "tab-separated"),
    "renamed column": (csv_text(header=CLEAN_HEADER.replace("monthly_charges", "MonthlyCharges")),
                       r"missing required column\(s\) 'monthly_charges' \(found 'monthlycharges'\?\)"),
    "dropped column": (csv_text(header=CLEAN_HEADER.replace(",region", ""),
                                rows=[r.rsplit(",", 1)[0] for r in CLEAN_ROWS]), "missing required column"),
    "duplicate column names": (csv_text(header=CLEAN_HEADER.replace("is_senior", "has_partner")),
                               r"duplicate column names \['has_partner'\]"),
    "header line over a megabyte": (  # beyond pyarrow's block: the type probe and the parse both fail
        csv_text([r + ",v" for r in CLEAN_ROWS], header=CLEAN_HEADER + "," + "x" * (1 << 20)), "unreadable CSV"),
    "column of the wrong type throughout": (
        csv_text([replace_field(r, 2, "twelve") for r in CLEAN_ROWS]), "'tenure_months' holds no int64 value at all"),
}


@pytest.mark.parametrize("case", sorted(FILE_LEVEL))
def test_file_level_failures_name_file_problem_and_fix(tmp_path, case):
    content, message = FILE_LEVEL[case]
    path = write_landing(tmp_path, content)
    before = path.read_bytes()
    with pytest.raises(LandingFileError, match=message) as err:
        read_landing_file(path, CUSTOMERS.schema)
    assert str(err.value).startswith(NAME) and "Fix: " in str(err.value)
    assert path.read_bytes() == before  # the landing file is never modified


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(LandingFileError, match="does not exist"):
        read_landing_file(tmp_path / NAME, CUSTOMERS.schema)


def test_truncated_parquet_is_unreadable(tmp_path):
    full = tmp_path / "full.parquet"
    pd.read_csv(write_landing(tmp_path, csv_text())).to_parquet(full)
    path = write_landing(tmp_path, full.read_bytes()[:-40], name="customers_2026-01-05.parquet")
    with pytest.raises(LandingFileError, match="unreadable Parquet"):
        read_landing_file(path, CUSTOMERS.schema)


# (row index to break, field index, bad value, the exact reason recorded)
ROW_LEVEL = {
    "negative tenure": (0, 2, "-3", "tenure_months:greater_than_or_equal_to=-3"),
    "NaN in required field": (1, 4, "", "monthly_charges:not_nullable"),
    "NaN spelled out": (1, 4, "NaN", "monthly_charges:not_nullable"),
    "unknown contract type": (2, 3, "weekly", "contract:isin=weekly"),
    "future snapshot date": (3, 1, "2026-02-01", "snapshot_date:not_after(2026-01-05)=2026-02-01"),
    "unparseable date": (3, 1, "yesterday", "snapshot_date:dtype(datetime64[ns])=yesterday"),
    "string in numeric column": (0, 4, "abc", "monthly_charges:dtype(float64)=abc"),
    "fraction in count column": (1, 8, "2.5", "support_calls:dtype(int64)=2.5"),
    "out of range upper bound": (2, 9, "99", "num_products:less_than_or_equal_to=99"),
    "flag not 0/1": (3, 10, "7", "is_senior:isin=7"),
    "very long id": (0, 0, "C" * 5000, "customer_id:str_length=" + "C" * 80),
    "region breaks the pattern": (1, 12, "North-East!", "region:str_matches=North-East!"),
    "empty id": (2, 0, "", "customer_id:not_nullable"),
}


@pytest.mark.parametrize("case", sorted(ROW_LEVEL))
def test_row_level_problems_are_quarantined_with_reason(tmp_path, case):
    row, field, value, reason = ROW_LEVEL[case]
    rows = list(CLEAN_ROWS)
    rows[row] = replace_field(rows[row], field, value)
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (4, 3, 1)
    bad = result.quarantine.iloc[0]
    assert bad["quarantine_reason"] == reason
    assert bad["source_row"] == row and bad["source_file"] == NAME
    assert bad["customer_id"] == (rows[row].split(",")[0] or None)  # the text that arrived is kept


def test_duplicate_ids_keep_first_and_quarantine_the_rest(tmp_path):
    rows = [*CLEAN_ROWS, replace_field(CLEAN_ROWS[1], 2, "41"), CLEAN_ROWS[1]]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert (result.rows_valid, result.rows_quarantined) == (4, 2)
    assert list(result.quarantine["source_row"]) == [4, 5]
    assert set(result.quarantine["quarantine_reason"]) == {"customer_id+snapshot_date:unique=C0000002,2026-01-05"}
    assert result.valid.loc[result.valid.customer_id == "C0000002", "tenure_months"].item() == 40


def test_bad_first_row_does_not_make_its_good_duplicate_a_duplicate(tmp_path):
    rows = [replace_field(CLEAN_ROWS[0], 3, "weekly"), *CLEAN_ROWS]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert result.quarantine["quarantine_reason"].tolist() == ["contract:isin=weekly"]


def test_several_reasons_on_one_row_are_all_recorded(tmp_path):
    rows = [replace_field(replace_field(CLEAN_ROWS[0], 2, "-1"), 3, "weekly"), *CLEAN_ROWS[1:]]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert result.quarantine["quarantine_reason"].item() == \
        "tenure_months:greater_than_or_equal_to=-1; contract:isin=weekly"
    assert result.reason_counts == {"tenure_months:greater_than_or_equal_to": 1, "contract:isin": 1}


def test_malformed_lines_are_quarantined_not_dropped(tmp_path):
    rows = [*CLEAN_ROWS[:2], CLEAN_ROWS[2] + ",surplus", "C0000009,2026-01-05", CLEAN_ROWS[3]]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (5, 3, 2)
    reasons = result.quarantine["quarantine_reason"].tolist()
    assert reasons[0].startswith("_row:malformed(expected 13 fields, got 14)=C0000003")
    assert reasons[1] == "_row:malformed(expected 13 fields, got 2)=C0000009,2026-01-05"


def test_extra_columns_are_reported_and_rows_stay_valid(tmp_path):
    rows = [r + ",SPRING24" for r in CLEAN_ROWS]
    result = _validate(write_landing(tmp_path, csv_text(rows, header=CLEAN_HEADER + ",promo_code")))
    assert (result.rows_valid, result.extra_columns) == (4, ["promo_code"])
    assert "promo_code" not in result.valid.columns


def test_reordered_columns_give_identical_rows(tmp_path):
    frame = pd.read_csv(write_landing(tmp_path, csv_text()), dtype=str, keep_default_na=False)
    shuffled = frame[list(reversed(frame.columns))]
    other = tmp_path / "other"
    other.mkdir()
    path = other / NAME
    shuffled.to_csv(path, index=False)
    pd.testing.assert_frame_equal(_validate(path).valid, _validate(tmp_path / NAME).valid)


def test_parquet_input_matches_csv_input(tmp_path):
    rows = [replace_field(CLEAN_ROWS[0], 4, "abc"), *CLEAN_ROWS[1:]]
    csv_path = write_landing(tmp_path, csv_text(rows))
    parquet_path = tmp_path / "customers_2026-01-05.parquet"
    pd.read_csv(csv_path, dtype=str, keep_default_na=False).to_parquet(parquet_path)
    from_csv, from_parquet = _validate(csv_path), _validate(parquet_path)
    pd.testing.assert_frame_equal(from_csv.valid, from_parquet.valid)
    assert from_parquet.quarantine["quarantine_reason"].item() == "monthly_charges:dtype(float64)=abc"


def test_labels_contract(tmp_path):
    text = "customer_id,snapshot_date,churned\nC1,2026-01-01,1\nC2,2026-01-01,2\nC3,2026-01-09,0\n"
    result = _validate(write_landing(tmp_path, text, name="labels_2026-01-05.csv"), spec=LABELS)
    assert result.valid["customer_id"].tolist() == ["C1"]
    assert result.quarantine["quarantine_reason"].tolist() == [
        "churned:isin=2", "snapshot_date:not_after(2026-01-05)=2026-01-09"]


def test_pq_roundtrip_of_outputs(tmp_path):
    """Both outputs are plain columnar tables (no pickles, no object soup that Parquet rejects)."""
    rows = [replace_field(CLEAN_ROWS[0], 4, "abc"), *CLEAN_ROWS[1:]]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    for frame in (result.valid, result.quarantine):
        frame.to_parquet(tmp_path / "out.parquet")
        assert pq.read_table(tmp_path / "out.parquet").num_rows == len(frame)


def _many_rows(n: int) -> list[str]:
    return [replace_field(CLEAN_ROWS[i % 4], 0, f"C{i:07d}") for i in range(n)]


def test_a_wrong_typed_value_past_the_first_megabyte_is_still_quarantined(tmp_path):
    """The parser types columns the file's head shows clean; a bad value further down still gets caught."""
    rows = _many_rows(15_000)  # ~1.2 MB: the last row lies beyond the probed head
    rows[-1] = replace_field(rows[-1], 8, "three")
    path = write_landing(tmp_path, csv_text(rows))
    assert path.stat().st_size > 1 << 20
    result = _validate(path)
    assert (result.rows_valid, result.rows_quarantined) == (14_999, 1)
    assert result.quarantine["quarantine_reason"].item() == "support_calls:dtype(int64)=three"
    assert result.quarantine["source_row"].item() == 14_999
    assert result.valid["support_calls"].dtype == "int64"


def test_infinity_means_the_same_in_clean_and_dirty_columns(tmp_path):
    """'inf' is a number out of range whether or not its column also holds text."""
    clean = [replace_field(CLEAN_ROWS[0], 4, "inf"), *CLEAN_ROWS[1:]]
    dirty = [*clean[:3], replace_field(CLEAN_ROWS[3], 4, "abc")]
    reasons = [_validate(write_landing(tmp_path, csv_text(rows))).quarantine["quarantine_reason"].tolist()
               for rows in (clean, dirty)]
    assert reasons[0] == ["monthly_charges:less_than_or_equal_to=inf"]
    assert reasons[1] == ["monthly_charges:less_than_or_equal_to=inf", "monthly_charges:dtype(float64)=abc"]


def test_the_key_is_id_and_day_together(tmp_path):
    """The same customer on two days is two snapshots; twice on one day is a duplicate."""
    earlier = replace_field(CLEAN_ROWS[0], 1, "2026-01-04")
    rows = [*CLEAN_ROWS, earlier, earlier, CLEAN_ROWS[0]]
    result = _validate(write_landing(tmp_path, csv_text(rows)))
    assert (result.rows_valid, result.rows_quarantined) == (5, 2)
    assert result.quarantine["quarantine_reason"].tolist() == [
        "customer_id+snapshot_date:unique=C0000001,2026-01-04", "customer_id+snapshot_date:unique=C0000001,2026-01-05"]
    assert result.quarantine["source_row"].tolist() == [5, 6]

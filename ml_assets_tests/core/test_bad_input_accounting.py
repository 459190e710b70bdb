"""The bad-input corpus, continued: record accounting, compression, time zones and redelivery.

Accounting compares two independent counts: records counted on the raw file (CSV bytes with quotes
respected, Parquet footer) against what parsing and validation produced.
"""

import gzip

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ml_examples.churn.problem import CUSTOMERS

from ml_assets.core import csv_input, ingest
from ml_assets.core.accounting import assess
from ml_assets.core.day_files import validate_files
from ml_assets.core.ingest import LandingFileError, read_landing_file
from ml_assets.core.validation import split_valid_rows
from ml_assets_tests.core.corpus import (
    AFTER_THE_DAY_IN_UTC,
    CLEAN_ROWS,
    DAY,
    NAME,
    OFFSET_DATES,
    csv_text,
    dated_rows,
    replace_field,
    with_blank_lines,
    write_landing,
)


def _split(path, name=None):
    return split_valid_rows(read_landing_file(path, CUSTOMERS.schema, name=name), CUSTOMERS.schema,
                            {"snapshot_date": DAY})


def _accounting(result):
    return next(o for o in assess(result, 0.05) if o.name == "row_accounting")


def test_blank_lines_are_reported_and_not_counted_as_records(tmp_path):
    result = _split(write_landing(tmp_path, with_blank_lines(csv_text())))
    assert (result.records_in, result.blank_lines, result.rows_valid) == (4, 3, 4)
    assert _accounting(result).passed


def test_malformed_lines_are_records_rejected_by_the_parser(tmp_path):
    rows = [*CLEAN_ROWS[:2], CLEAN_ROWS[2] + ",surplus", CLEAN_ROWS[3]]
    result = _split(write_landing(tmp_path, csv_text(rows)))
    assert (result.records_in, result.rows_valid, result.rows_rejected_by_parser) == (4, 3, 1)
    assert _accounting(result).metadata["rows_rejected_by_parser"] == 1 and _accounting(result).passed


def test_a_quoted_newline_is_one_record(tmp_path):
    rows = ['"C00\n01"' + CLEAN_ROWS[0][8:], *CLEAN_ROWS[1:]]
    result = _split(write_landing(tmp_path, csv_text(rows)))
    assert (result.records_in, result.rows_valid) == (4, 4) and result.valid["customer_id"][0] == "C00\n01"


def test_a_row_the_csv_parser_drops_fails_row_accounting(tmp_path, monkeypatch):
    real = csv_input.pcsv.read_csv
    monkeypatch.setattr(csv_input.pcsv, "read_csv", lambda *a, **k: (t := real(*a, **k)).slice(0, t.num_rows - 1))
    result = _split(write_landing(tmp_path, csv_text()))
    check = _accounting(result)
    assert not check.passed and (check.metadata["records_in"], check.metadata["rows_valid"]) == (4, 3)
    assert check.description.startswith("1 record(s) missing: the file holds 4 records (counted on the raw file)")


def test_a_row_the_parquet_reader_drops_fails_row_accounting(tmp_path, monkeypatch):
    path = tmp_path / "customers_2026-01-05.parquet"
    pd.read_csv(write_landing(tmp_path, csv_text()), dtype=str, keep_default_na=False).to_parquet(path)
    real = ingest.pq.read_table
    monkeypatch.setattr(ingest.pq, "read_table", lambda *a, **k: real(*a, **k).slice(1))
    assert not _accounting(_split(path)).passed


@pytest.mark.parametrize("compression", ["snappy", "gzip", "zstd", "brotli", "none"])
def test_compressed_parquet_reads_like_csv(tmp_path, compression):
    csv_path = write_landing(tmp_path, csv_text())
    path = tmp_path / "customers_2026-01-05.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(csv_path, dtype=str, keep_default_na=False)), path,
                   compression=compression)
    from_parquet = _split(path)
    pd.testing.assert_frame_equal(from_parquet.valid, _split(csv_path).valid)
    assert from_parquet.records_in == 4


def test_csv_gz_reads_like_csv(tmp_path):
    plain = write_landing(tmp_path, csv_text())
    packed = write_landing(tmp_path, gzip.compress(plain.read_bytes()), name=NAME + ".gz")
    result = _split(packed)
    pd.testing.assert_frame_equal(result.valid, _split(plain).valid)
    assert (result.records_in, result.quarantine["source_file"].tolist()) == (4, [])


def test_a_broken_csv_gz_is_a_file_level_error(tmp_path):
    path = write_landing(tmp_path, gzip.compress(csv_text().encode())[:30], name=NAME + ".gz")
    with pytest.raises(LandingFileError, match=r"^customers_2026-01-05.csv.gz: the file is named .gz but is not a "
                                               r"complete gzip file .*Fix: re-send it gzip-compressed"):
        read_landing_file(path, CUSTOMERS.schema)


def test_errors_and_quarantine_name_the_landing_file_not_the_archive_copy(tmp_path):
    copy = write_landing(tmp_path, csv_text([replace_field(CLEAN_ROWS[0], 3, "weekly")]), name="0123abcd_" + NAME)
    assert _split(copy, name=NAME).quarantine["source_file"].tolist() == [NAME]
    copy.write_text(csv_text().replace("\n", "\r"))
    with pytest.raises(LandingFileError, match=f"^{NAME}: the lines end with a carriage return only"):
        read_landing_file(copy, CUSTOMERS.schema, name=NAME)


def test_offsets_are_converted_to_utc_and_the_day_is_the_utc_day(tmp_path):
    dates = [d for d, _ in OFFSET_DATES] + [AFTER_THE_DAY_IN_UTC]
    result = _split(write_landing(tmp_path, csv_text(dated_rows(dates))))
    assert result.valid["snapshot_date"].astype(str).tolist() == [utc for _, utc in OFFSET_DATES]
    assert result.quarantine["quarantine_reason"].tolist() == [
        f"snapshot_date:not_after(2026-01-05)={AFTER_THE_DAY_IN_UTC}"]  # quoted as it arrived
    assert result.utc_converted == {"snapshot_date": 4}  # every value that carried an offset


def test_a_time_on_the_partition_day_is_on_it(tmp_path):
    result = _split(write_landing(tmp_path, csv_text(dated_rows(["2026-01-05 23:59:59", "2026-01-06 00:00:00"]))))
    assert (result.rows_valid, result.quarantine["quarantine_reason"].tolist()) == (
        1, ["snapshot_date:not_after(2026-01-05)=2026-01-06"])


def test_tz_aware_parquet_follows_the_same_rule_as_csv_offsets(tmp_path):
    csv_path = write_landing(tmp_path, csv_text(dated_rows([d for d, _ in OFFSET_DATES[:3]])))
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"], format="ISO8601", utc=True).dt.tz_convert(
        "Europe/Berlin")
    path = tmp_path / "customers_2026-01-05.parquet"
    frame.to_parquet(path)
    from_parquet, from_csv = _split(path), _split(csv_path)
    assert from_parquet.rows_quarantined == 0 and from_parquet.utc_converted == {"snapshot_date": 3}
    pd.testing.assert_series_equal(from_parquet.valid["snapshot_date"], from_csv.valid["snapshot_date"])


@pytest.mark.parametrize("resend", ["same bytes", "CRLF line endings"])
def test_a_redelivery_under_a_second_name_is_recognised_not_duplicates(tmp_path, resend):
    first = write_landing(tmp_path, csv_text())
    again = csv_text().replace("\n", "\r\n") if resend == "CRLF line endings" else csv_text()
    second = write_landing(tmp_path, again, name="customers_2026-01-05_resend.csv")
    result = validate_files([first, second], CUSTOMERS.schema, {"snapshot_date": DAY})
    assert result.redelivered == {second.name: first.name}
    assert (result.records_in, result.rows_valid, result.rows_quarantined, result.reason_counts) == (4, 4, 0, {})
    assert all(o.passed for o in assess(result, 0.05))


@pytest.mark.parametrize("text, expected", [
    ("h\n1\n2\n", (2, 0, 0)), ("h\n1\n2", (2, 0, 0)), ("\nh\n1\n", (1, 1, 0)), ("h\n\n1\n\n\n2\n", (2, 3, 0)),
    ("h\r\n1\r\n\r\n2\r\n", (2, 1, 0)), ('h\n"a\nb"\n2\n', (2, 0, 1)), ('h\n"a""\n"\n', (1, 0, 1)), ("", (0, 0, 0)),
])
def test_records_are_counted_on_the_raw_bytes(text, expected):
    from ml_assets.core import records

    assert tuple(vars(records.count_csv_records(text.encode())).values()) == expected


def test_the_block_message_offers_a_threshold_only_when_the_rate_alone_failed(tmp_path, monkeypatch):
    from ml_assets.core.accounting import block_message, failed_blocking

    rows = [replace_field(r, 3, "weekly") for r in CLEAN_ROWS[:2]] + CLEAN_ROWS[2:]
    files = [{"path": f"/landing/{NAME}", "archive_path": f"/raw/abc_{NAME}"}]
    result = _split(write_landing(tmp_path, csv_text(rows)))
    message = block_message("customers", "2026-01-05", result, failed_blocking(assess(result, 0.05)), files,
                            ["raw_customers"], [])
    assert "--config-json" in message and "max_quarantine_rate: 0.505" in message
    assert f"landing file: /landing/{NAME} (archive copy: /raw/abc_{NAME})" in message
    real = csv_input.pcsv.read_csv
    monkeypatch.setattr(csv_input.pcsv, "read_csv", lambda *a, **k: (t := real(*a, **k)).slice(0, t.num_rows - 1))
    lost = _split(write_landing(tmp_path, csv_text(rows)))
    message = block_message("customers", "2026-01-05", lost, failed_blocking(assess(lost, 0.05)), files, [], [])
    assert "row_accounting failed" in message and "--config-json" not in message
    assert "cannot be accepted by config" in message

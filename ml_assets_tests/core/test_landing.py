import os
import stat

import pytest

from ml_assets.core.landing import (LandingCursor, archive_file, describe_file, parse_landing_name,
                                    plan_ingestion, run_key_for, scan_landing)


@pytest.mark.parametrize("name, expected", [
    ("customers_2026-01-05.csv", ("2026-01-05", "csv")),
    ("customers_2026-01-05.parquet", ("2026-01-05", "parquet")),
    ("customers_2026-01-05_resend-2.csv", ("2026-01-05", "csv")),
    ("labels_2026-01-05.csv", None),           # another dataset's file
    ("customers_2026-1-5.csv", None),          # not an ISO day
    ("customers_2026-01-05.xlsx", None),
    ("customers.csv", None),
])
def test_parse_landing_name(name, expected):
    assert parse_landing_name(name, "customers") == expected


def test_scan_groups_by_day_skips_temp_files_and_reports_strangers(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    for name in ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv", "customers_2026-01-06.csv",
                 ".customers_2026-01-07.csv.tmp", "notes.txt"]:
        (folder / name).write_text("x")
    by_day, strangers = scan_landing(tmp_path, "customers")
    assert {day: [p.name for p in paths] for day, paths in by_day.items()} == {
        "2026-01-05": ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv"],
        "2026-01-06": ["customers_2026-01-06.csv"]}
    assert [p.name for p in strangers] == ["notes.txt"]
    assert scan_landing(tmp_path / "absent", "customers") == ({}, [])


def test_describe_rejects_foreign_names(tmp_path):
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(ValueError, match="expected 'customers_YYYY-MM-DD"):
        describe_file(tmp_path / "x.csv", "customers")


def test_archive_is_content_addressed_read_only_and_leaves_landing_untouched(tmp_path):
    src = tmp_path / "customers_2026-01-05.csv"
    src.write_text("a,b\n1,2\n")
    first = archive_file(describe_file(src, "customers"), tmp_path / "raw", "customers")
    assert first.read_bytes() == src.read_bytes() == b"a,b\n1,2\n"
    assert not first.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert archive_file(describe_file(src, "customers"), tmp_path / "raw", "customers") == first
    src.write_text("a,b\n1,3\n")  # a corrected resend under the same name
    second = archive_file(describe_file(src, "customers"), tmp_path / "raw", "customers")
    assert second != first and first.read_bytes() == b"a,b\n1,2\n"  # nothing archived is overwritten


def test_archive_refuses_a_file_that_changed_since_it_was_hashed(tmp_path):
    src = tmp_path / "customers_2026-01-05.csv"
    src.write_text("v1")
    landed = describe_file(src, "customers")
    src.write_text("v2")
    with pytest.raises(ValueError, match="changed while it was being archived"):
        archive_file(landed, tmp_path / "raw", "customers")
    assert not list((tmp_path / "raw").rglob("*.csv"))


def test_run_key_depends_on_content_not_order(tmp_path):
    a, b = tmp_path / "customers_2026-01-05.csv", tmp_path / "customers_2026-01-05_b.csv"
    a.write_text("1")
    b.write_text("2")
    files = [describe_file(a, "customers"), describe_file(b, "customers")]
    assert run_key_for("customers", "2026-01-05", files) == run_key_for("customers", "2026-01-05", files[::-1])
    a.write_text("changed")
    assert run_key_for("customers", "2026-01-05", [describe_file(a, "customers"), files[1]]) != \
        run_key_for("customers", "2026-01-05", files)


def test_plan_requests_new_and_changed_days_once(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "customers_2026-01-05.csv").write_text("day5")
    (folder / "customers_2099-01-01.csv").write_text("future")
    cursor = LandingCursor()
    is_partition = lambda day: day < "2030-01-01"  # noqa: E731
    plans, outside = plan_ingestion(cursor, scan_landing(tmp_path, "customers")[0], "customers", is_partition)
    assert [p[0] for p in plans] == ["2026-01-05"] and outside == ["2099-01-01"]
    cursor = LandingCursor.from_json(cursor.to_json())  # survives serialisation between ticks
    assert plan_ingestion(cursor, scan_landing(tmp_path, "customers")[0], "customers", is_partition)[0] == []
    (folder / "customers_2026-01-05.csv").write_text("day5 corrected")
    os.utime(folder / "customers_2026-01-05.csv", ns=(1, 1))  # a new mtime forces a re-hash
    plans, _ = plan_ingestion(cursor, scan_landing(tmp_path, "customers")[0], "customers", is_partition)
    assert [p[0] for p in plans] == ["2026-01-05"]


def test_cursor_forgets_deleted_files(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    path = folder / "customers_2026-01-05.csv"
    path.write_text("x")
    cursor = LandingCursor()
    plan_ingestion(cursor, scan_landing(tmp_path, "customers")[0], "customers", lambda d: True)
    path.unlink()
    plan_ingestion(cursor, scan_landing(tmp_path, "customers")[0], "customers", lambda d: True)
    assert cursor.hashes == {}

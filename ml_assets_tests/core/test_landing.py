import os
import stat

import pytest

from ml_assets.core.landing import (
    LandingCursor,
    archive_file,
    describe_file,
    parse_landing_name,
    plan_ingestion,
    run_key_for,
    scan_landing,
)


@pytest.mark.parametrize("name, expected", [
    ("customers_2026-01-05.csv", ("2026-01-05", "csv")),
    ("customers_2026-01-05.parquet", ("2026-01-05", "parquet")),
    ("customers_2026-01-05_resend-2.csv", ("2026-01-05", "csv")),
    ("customers_2026-01-05.csv.gz", ("2026-01-05", "csv.gz")),
    ("customers_2026-01-05_b.csv.gz", ("2026-01-05", "csv.gz")),
    ("labels_2026-01-05.csv", None),           # another dataset's file
    ("customers_2026-1-5.csv", None),          # not an ISO day
    ("customers_2026-01-05.xlsx", None),
    ("customers.csv", None),
])
def test_parse_landing_name(name, expected):
    assert parse_landing_name(name, "customers") == expected


def test_scan_groups_by_day_and_gives_every_other_file_a_reason(tmp_path):
    folder = tmp_path / "customers"
    (folder / "late").mkdir(parents=True)
    for name in ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv.gz", "customers_2026-01-06.csv",
                 ".customers_2026-01-07.csv.tmp", "notes.txt", "customers_2026-01-08.xlsx",
                 "labels_2026-01-08.csv", "late/customers_2026-01-09.csv"]:
        (folder / name).write_text("x")
    scan = scan_landing(tmp_path, "customers")
    assert {day: [p.name for p in paths] for day, paths in scan.by_day.items()} == {
        "2026-01-05": ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv.gz"],
        "2026-01-06": ["customers_2026-01-06.csv"]}
    assert scan.ignored == {
        ".customers_2026-01-07.csv.tmp": "dot-file (a writer's temporary file): rename it to its final name when complete",
        "notes.txt": "the name does not carry the day: expected customers_YYYY-MM-DD[_suffix] with .csv, .csv.gz or .parquet",
        "customers_2026-01-08.xlsx": "unsupported file type .xlsx: expected customers_YYYY-MM-DD[_suffix] with "
                                     ".csv, .csv.gz or .parquet",
        "labels_2026-01-08.csv": "named for dataset 'labels', not 'customers': move it to that dataset's folder",
        "late/customers_2026-01-09.csv": f"in subdirectory late/: only files directly in {folder} are ingested; move it up",
    }
    assert scan_landing(tmp_path / "absent", "customers").by_day == {}


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


def _plan(cursor, root, is_partition=lambda day: True, settle_ticks=1):
    return plan_ingestion(cursor, scan_landing(root, "customers").by_day, "customers", is_partition, settle_ticks)


def test_plan_requests_new_and_changed_days_once(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "customers_2026-01-05.csv").write_text("day5")
    (folder / "customers_2099-01-01.csv").write_text("future")
    cursor = LandingCursor()
    is_partition = lambda day: day < "2030-01-01"
    plan = _plan(cursor, tmp_path, is_partition)
    assert [p[0] for p in plan.requests] == ["2026-01-05"]
    assert plan.outside == {"customers_2099-01-01.csv": "2099-01-01"}  # files by name, with their day
    cursor = LandingCursor.from_json(cursor.to_json())  # survives serialisation between ticks
    again = _plan(cursor, tmp_path, is_partition)
    assert again.requests == [] and list(again.unchanged) == ["customers_2026-01-05.csv"]
    assert again.unchanged["customers_2026-01-05.csv"][0] == "2026-01-05"
    (folder / "customers_2026-01-05.csv").write_text("day5 corrected")
    os.utime(folder / "customers_2026-01-05.csv", ns=(1, 1))  # a new mtime forces a re-hash
    assert [p[0] for p in _plan(cursor, tmp_path, is_partition).requests] == ["2026-01-05"]


def test_a_file_counts_as_landed_only_when_unchanged_for_two_ticks(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    path = folder / "customers_2026-01-05.csv"
    path.write_text("customer_id,snap")  # half written
    cursor = LandingCursor()
    first = _plan(cursor, tmp_path, settle_ticks=2)
    assert first.requests == [] and first.waiting == [path.name]
    path.write_text("customer_id,snapshot_date\nC1,2026-01-05\n")  # the writer finishes
    assert _plan(cursor, tmp_path, settle_ticks=2).waiting == [path.name]  # changed since the last tick
    [(day, _, files)] = _plan(cursor, tmp_path, settle_ticks=2).requests  # unchanged: complete
    assert day == "2026-01-05" and files[0].size == path.stat().st_size
    assert _plan(cursor, tmp_path, settle_ticks=2).requests == []  # ingested once


def test_a_day_waits_for_all_of_its_files(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "customers_2026-01-05.csv").write_text("a")
    cursor = LandingCursor()
    _plan(cursor, tmp_path, settle_ticks=2)
    (folder / "customers_2026-01-05_b.csv").write_text("b")  # a second file starts arriving
    plan = _plan(cursor, tmp_path, settle_ticks=2)
    assert plan.requests == [] and sorted(plan.waiting) == ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv"]
    [(_, _, files)] = _plan(cursor, tmp_path, settle_ticks=2).requests
    assert [f.name for f in files] == ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv"]


def test_cursor_forgets_deleted_files(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    path = folder / "customers_2026-01-05.csv"
    path.write_text("x")
    cursor = LandingCursor()
    _plan(cursor, tmp_path)
    path.unlink()
    _plan(cursor, tmp_path)
    assert cursor.hashes == {} and cursor.seen == {}


def test_a_day_outside_the_partitions_is_ingested_once_it_is_one(tmp_path):
    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "customers_2026-01-07.csv").write_text("x")
    cursor, today = LandingCursor(), {"last": "2026-01-06"}
    assert _plan(cursor, tmp_path, lambda day: day <= today["last"]).outside == {"customers_2026-01-07.csv": "2026-01-07"}
    today["last"] = "2026-01-07"  # a day later
    assert [day for day, _, _ in _plan(cursor, tmp_path, lambda day: day <= today["last"]).requests] == ["2026-01-07"]


def test_an_older_or_damaged_cursor_is_read_without_failing_the_sensor():
    old = LandingCursor.from_json('{"hashes": {"a": [1, 2, "x"]}, "requested": {"2026-01-05": "k"}}')
    assert (old.requested, old.seen) == ({"2026-01-05": "k"}, {})  # the cursor of the version before waiting
    assert LandingCursor.from_json("{not json") == LandingCursor()
    assert LandingCursor.from_json('["a list"]') == LandingCursor()


def test_waiting_files_are_reported_apart_from_ignored_ones(tmp_path):
    """The sensor warns about ignored files (the user's to fix) and only reports waiting ones (normal)."""
    from ml_assets.core.inventory import build_inventory

    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "customers_2026-01-05.csv").write_text("customer_id\nC1\n")  # seen once: waiting
    (folder / "customers.xlsx").write_text("?")  # not a landing name: ignored
    inventory = build_inventory(scan_landing(tmp_path, "customers"), _plan(LandingCursor(), tmp_path, settle_ticks=2),
                                lambda day: "outside")
    assert inventory.ignored().startswith("ignored: customers.xlsx (") and "waiting" not in inventory.ignored()
    assert inventory.attention().startswith("waiting: customers_2026-01-05.csv (")
    assert inventory.attention().endswith(inventory.ignored())

"""The landing zone and the raw archive on an S3-compatible server, through s3fs over HTTP: the same
listing rules, settling, content-addressed archive and parsing as on local disk."""

import hashlib

import pandas as pd
import pandera.pandas as pa
import pytest
import s3fs
from upath import UPath

from ml_assets.core.day_files import validate_files
from ml_assets.core.ingest import LandingFileError, read_landing_file
from ml_assets.core.landing import LandingCursor, archive_file, plan_ingestion, scan_landing
from ml_assets.sources.base import archive_bytes
from ml_assets.sources.landing import LandingZoneResource

SCHEMA = pa.DataFrameSchema({"customer_id": pa.Column(str), "tenure_months": pa.Column(int, pa.Check.ge(0))})


def _plan(cursor, root, settle_ticks=2):
    return plan_ingestion(cursor, scan_landing(root, "customers").by_day, "customers", lambda day: True, settle_ticks)


def test_the_scan_lists_objects_with_the_same_rules_as_a_folder(s3):
    root = UPath(s3.folder())
    for name in ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv.gz", ".customers_2026-01-07.csv.tmp",
                 "notes.txt", "labels_2026-01-08.csv", "late/customers_2026-01-09.csv"]:
        (root / "customers" / name).write_bytes(b"x")
    scan = scan_landing(str(root), "customers")
    assert {day: [p.name for p in paths] for day, paths in scan.by_day.items()} == {
        "2026-01-05": ["customers_2026-01-05.csv", "customers_2026-01-05_b.csv.gz"]}
    assert set(scan.ignored) == {".customers_2026-01-07.csv.tmp", "notes.txt", "labels_2026-01-08.csv",
                                 "late/customers_2026-01-09.csv"}
    assert scan.ignored["late/customers_2026-01-09.csv"].startswith("in subdirectory late/")
    assert scan_landing(f"{root}-absent", "customers").by_day == {}


def test_another_writers_object_is_seen_settled_and_a_same_size_rewrite_is_requested_again(s3):
    root = s3.folder()
    cursor = LandingCursor()
    assert _plan(cursor, root).requests == []  # lists (and would cache) the empty folder
    path = f"{root}/customers/customers_2026-01-05.csv"
    other = s3fs.S3FileSystem(skip_instance_cache=True)  # another process's client
    other.pipe(path, b"id\nC1\n")  # the listing cached by the last tick must not hide it
    assert _plan(cursor, root).waiting == ["customers_2026-01-05.csv"]
    cursor = LandingCursor.from_json(cursor.to_json())
    [(day, key, files)] = _plan(cursor, root).requests
    assert day == "2026-01-05" and files[0].sha256 == hashlib.sha256(b"id\nC1\n").hexdigest()
    assert files[0].path == path
    other.pipe(path, b"id\nC2\n")  # same size, most likely the same second: the ETag still changes
    _plan(cursor, root)
    [(_, other_key, _)] = _plan(cursor, root).requests
    assert other_key != key


def test_the_archive_on_s3_is_content_addressed_and_never_overwritten(s3, tmp_path):
    landing = LandingZoneResource(landing_dir=s3.folder(), archive_dir=s3.folder())
    path = f"{landing.landing_dir}/customers/customers_2026-01-05.csv"
    s3.fs.pipe(path, b"a,b\n1,2\n")
    [landed] = landing.files_for("customers", "2026-01-05")
    first = landing.archive(landed, "customers")
    assert str(first) == f"{landing.archive_dir}/customers/2026-01-05/{landed.sha256[:16]}_customers_2026-01-05.csv"
    assert s3.fs.cat(str(first)) == b"a,b\n1,2\n" and s3.fs.cat(path) == b"a,b\n1,2\n"  # landing left as it was
    assert landing.archive(landed, "customers") == first
    assert not [p for p in s3.fs.find(landing.archive_dir) if p.endswith(".tmp")]
    s3.fs.pipe(path, b"a,b\n1,3\n")
    second = landing.archive(landing.files_for("customers", "2026-01-05")[0], "customers")
    assert second != first and s3.fs.cat(str(first)) == b"a,b\n1,2\n"
    s3.fs.pipe(path, b"v3")
    [hashed] = landing.files_for("customers", "2026-01-05")
    s3.fs.pipe(path, b"v4")  # after hashing, before archiving
    with pytest.raises(ValueError, match="changed while it was being archived"):
        archive_file(hashed, landing.archive_dir, "customers")
    assert len(s3.fs.find(landing.archive_dir)) == 2  # neither the changed bytes nor a temporary object
    local = tmp_path / "customers_2026-01-06.csv"  # a local landing file archived to S3
    local.write_bytes(b"a,b\n5,6\n")
    pulled = archive_bytes(landing.archive_dir, "customers", "2026-01-06", local.name, local.read_bytes(), "csv")
    assert pulled["archive_path"].startswith("s3://") and s3.fs.cat(pulled["archive_path"]) == b"a,b\n5,6\n"


def test_files_on_s3_are_parsed_and_validated_and_a_bad_one_is_named(s3):
    root = s3.folder()
    s3.fs.pipe(f"{root}/good.csv", b"customer_id,tenure_months\nC1,3\nC2,-1\n")
    result = validate_files([f"{root}/good.csv"], SCHEMA, names=["customers_2026-01-05.csv"])
    assert result.rows_valid == 1 and result.rows_quarantined == 1 and result.accounted
    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "tenure_months": [1, 2]})
    with s3.fs.open(f"{root}/day.parquet", "wb") as fh:
        frame.to_parquet(fh)
    batch = read_landing_file(f"{root}/day.parquet", SCHEMA, name="customers_2026-01-05.parquet")
    assert batch.records_counted == 2 and batch.table.num_rows == 2
    s3.fs.pipe(f"{root}/zip.csv", b"PK\x03\x04rest")
    with pytest.raises(LandingFileError, match="a zip archive"):
        read_landing_file(f"{root}/zip.csv", SCHEMA, name="customers_2026-01-05.csv")
    with pytest.raises(LandingFileError, match="does not exist"):
        read_landing_file(f"{root}/missing.csv", SCHEMA)


def test_the_simulated_world_lands_on_object_storage(s3):
    """`ML_ASSETS_PROFILE=cluster make demo` lands its days in the bucket the landing sensor lists."""
    from datetime import date

    from ml_examples.churn.simulation import WorldConfig, write_world

    root = s3.folder()
    written = write_world(WorldConfig(start_date=date(2026, 1, 1), rows_per_day=50, population=200,
                                      label_delay_days=1), 3, root)
    assert sorted(p.name for p in written) == [*(f"customers_2026-01-0{d}.csv" for d in (1, 2, 3)),
                                               *(f"labels_2026-01-0{d}.csv" for d in (2, 3))]  # labels land a day late
    scan = scan_landing(root, "customers")
    assert sorted(scan.by_day) == ["2026-01-01", "2026-01-02", "2026-01-03"] and not scan.ignored
    frame = pd.read_csv(UPath(f"{root}/customers/customers_2026-01-02.csv").open("rb"))
    assert len(frame) == 50 and "customer_id" in frame

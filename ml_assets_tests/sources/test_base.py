"""The archive every source writes to, and the masking every message goes through."""

import stat
from datetime import date

import pytest

from ml_assets.sources import DaySource, HttpJsonSource, SqlSource, archive_bytes, mask_url


def test_archive_bytes_is_content_addressed_read_only_and_never_overwrites(tmp_path):
    first = archive_bytes(tmp_path, "events", date(2026, 1, 5), "events_2026-01-05.csv", b"id\n1\n", "csv")
    again = archive_bytes(tmp_path, "events", "2026-01-05", "events_2026-01-05.csv", b"id\n1\n", "csv")
    other = archive_bytes(tmp_path, "events", "2026-01-05", "events_2026-01-05.csv", b"id\n2\n", "csv")
    assert first == again and other["archive_path"] != first["archive_path"]
    assert set(first) == {"path", "name", "partition", "file_format", "size", "sha256", "archive_path"}
    assert first["path"] == first["archive_path"] and first["size"] == 5
    folder = tmp_path / "events" / "2026-01-05"
    assert sorted(p.name for p in folder.iterdir()) == sorted(  # no temporary file left behind
        [f"{first['sha256'][:16]}_events_2026-01-05.csv", f"{other['sha256'][:16]}_events_2026-01-05.csv"])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in folder.iterdir())


@pytest.mark.parametrize("name, file_format, problem", [
    ("events.csv", "json", "file format 'json'"),
    ("../events.csv", "csv", "a plain file name"),
    (".events.csv", "csv", "a plain file name"),
    ("events.csv", "parquet", r"does not end in \.parquet"),
])
def test_archive_bytes_refuses_names_the_validator_could_not_read(tmp_path, name, file_format, problem):
    with pytest.raises(ValueError, match=problem):
        archive_bytes(tmp_path, "events", "2026-01-05", name, b"x", file_format)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("text, masked", [
    ("postgresql+psycopg2://reader:pw@db:5432/x", "postgresql+psycopg2://reader:***@db:5432/x"),
    ("failed for u:p@ss@host/db", "failed for u:***@host/db"),
    ("https://api/x?day=1&api_key=abc&page=2", "https://api/x?day=1&api_key=***&page=2"),
    ("sqlite:////tmp/a.db and https://user@h/x at 10:30", "sqlite:////tmp/a.db and https://user@h/x at 10:30"),
])
def test_mask_url(text, masked):
    assert mask_url(text) == masked


def test_both_sources_are_day_sources():
    assert isinstance(SqlSource(table="t", date_column="d"), DaySource)
    assert isinstance(HttpJsonSource("http://127.0.0.1/x"), DaySource)

"""SqlSource against a real PostgreSQL (a scratch database) and SQLite: pulled, archived, validated."""

import stat
from datetime import date, datetime
from pathlib import Path

import pandera.pandas as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from ml_assets.core.day_files import validate_files
from ml_assets.core.landing import sha256_file
from ml_assets.sources import SourceError, SqlSource, pull_day
from ml_assets_tests.postgres import scratch_database, sqlalchemy_url

DAY, OTHER_DAY, EMPTY_DAY = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)
ROWS = [  # id, day, amount, note, seen_at: day 1 holds a NULL note and an out-of-range amount
    (1, "2026-01-05", 10, "'first'", "'2026-01-05 08:00:00'"),
    (2, "2026-01-05", 7, "NULL", "'2026-01-05 09:30:00'"),
    (3, "2026-01-05", -5, "'refund'", "'2026-01-05 10:00:00'"),
    (4, "2026-01-06", 3, "'next day'", "'2026-01-06 08:00:00'"),
]
SCHEMA = pa.DataFrameSchema({
    "id": pa.Column(int), "day": pa.Column("datetime64[ns]"), "amount": pa.Column(int, pa.Check.ge(0)),
    "note": pa.Column(str, nullable=True), "seen_at": pa.Column("datetime64[ns]")})
QUERY = "SELECT id, day, amount, note, seen_at FROM events WHERE day = :day ORDER BY id"


def _load(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id INTEGER, day DATE, amount INTEGER, note TEXT, seen_at TIMESTAMP)"))
        for row_id, day, amount, note, seen_at in ROWS:  # literals: both databases read ISO text as dates
            conn.execute(sa.text(f"INSERT INTO events VALUES ({row_id}, '{day}', {amount}, {note}, {seen_at})"))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'source.db'}"
        _load(url)
        yield url
    else:
        with scratch_database("ml_assets_sources") as name:
            url = sqlalchemy_url(name)
            _load(url)
            yield url


def test_a_day_is_archived_read_only_content_addressed_and_idempotent(db_url, tmp_path):
    source = SqlSource(QUERY, url=db_url)
    first = pull_day(source, tmp_path, "events", DAY)
    archived = Path(first["archive_path"])
    assert archived.parent == tmp_path / "events" / "2026-01-05"
    assert archived.name == f"{first['sha256'][:16]}_events_2026-01-05.parquet"
    assert stat.S_IMODE(archived.stat().st_mode) == 0o444
    assert sha256_file(archived) == first["sha256"] and archived.stat().st_size == first["size"]
    assert (first["name"], first["partition"], first["file_format"]) == ("events_2026-01-05.parquet", "2026-01-05",
                                                                         "parquet")
    assert first["path"] == source.describe()
    assert pull_day(source, tmp_path, "events", DAY) == first
    assert [p.name for p in archived.parent.iterdir()] == [archived.name]  # nothing written twice


def test_rows_keep_their_types_and_nulls(db_url, tmp_path):
    table = pq.read_table(pull_day(SqlSource(QUERY, url=db_url), tmp_path, "events", DAY)["archive_path"])
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3] and rows[1]["note"] is None
    if db_url.startswith("postgresql"):  # SQLite has no date type: its dates arrive as text, parsed by validation
        assert rows[0]["day"] == DAY and rows[0]["seen_at"] == datetime(2026, 1, 5, 8)


def test_archived_day_runs_through_validation_and_quarantine(db_url, tmp_path):
    pulled = pull_day(SqlSource(QUERY, url=db_url), tmp_path, "events", DAY)
    result = validate_files([pulled["archive_path"]], SCHEMA, {"day": DAY}, names=[pulled["name"]])
    assert (result.records, result.rows_valid, result.rows_quarantined, result.accounted) == (3, 2, 1, True)
    assert result.reason_counts == {"amount:greater_than_or_equal_to": 1}
    assert result.quarantine["source_file"].tolist() == ["events_2026-01-05.parquet"]
    assert result.valid["seen_at"].tolist()[0].isoformat() == "2026-01-05T08:00:00"


def test_table_form_quotes_identifiers_and_selects_the_day(db_url, tmp_path):
    source = SqlSource(table="events", date_column="day", url=db_url)
    table = pq.read_table(pull_day(source, tmp_path, "events", OTHER_DAY)["archive_path"])
    assert table.column("id").to_pylist() == [4]
    hostile = SqlSource(table='events"; DROP TABLE events; --', date_column="day", url=db_url)
    with pytest.raises(SourceError, match="the query failed"):
        hostile.pull("events", DAY)
    assert len(pq.read_table(pull_day(source, tmp_path, "events", DAY)["archive_path"])) == 3  # table still there


def test_a_day_without_rows_names_the_source_and_the_day(db_url):
    with pytest.raises(SourceError, match=r"SQL .* returned no rows for 2026-01-07\. Fix: load the day upstream"):
        SqlSource(QUERY, url=db_url).pull("events", EMPTY_DAY)


def test_sql_errors_say_what_failed(db_url):
    with pytest.raises(SourceError, match="the query failed .*no_such_table.*Fix: check the query"):
        SqlSource("SELECT * FROM no_such_table WHERE day = :day", url=db_url).pull("events", DAY)


def test_the_url_comes_from_the_named_environment_variable(db_url, monkeypatch, tmp_path):
    monkeypatch.delenv("EVENTS_DB_URL", raising=False)
    source = SqlSource(QUERY, url_env="EVENTS_DB_URL")
    with pytest.raises(SourceError, match="environment variable EVENTS_DB_URL is not set. Fix: set EVENTS_DB_URL"):
        source.pull("events", DAY)
    monkeypatch.setenv("EVENTS_DB_URL", db_url)
    assert pull_day(source, tmp_path, "events", DAY)["path"] == "SQL $EVENTS_DB_URL query " + QUERY


@pytest.mark.parametrize("url, problem", [
    ("postgresql+psycopg2://reader:s3cret-pw@127.0.0.1:1/nowhere", "cannot connect"),
    ("nosuchdb://reader:s3cret-pw@host/db", "not a usable database URL"),
    ("postgresql+nodriver://reader:s3cret-pw@host/db", "not a usable database URL|no database driver"),
])
def test_a_password_in_the_url_never_reaches_a_message(url, problem):
    source = SqlSource(QUERY, url=url)
    with pytest.raises(SourceError, match=problem) as raised:
        source.pull("events", DAY)
    assert "s3cret-pw" not in str(raised.value) and "reader:***@" in str(raised.value)
    assert "s3cret-pw" not in repr(source)


def test_a_query_must_filter_on_the_day():
    with pytest.raises(ValueError, match=":day bind parameter"):
        SqlSource("SELECT * FROM events")
    with pytest.raises(ValueError, match="either query"):
        SqlSource()
    with pytest.raises(ValueError, match="needs both"):
        SqlSource(table="events")


def test_mixed_sqlite_values_become_text_and_are_quarantined(tmp_path):
    """SQLite stores 'three' in an INTEGER column: the column arrives as text, the bad value is quarantined."""
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counts (day DATE, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO counts VALUES ('2026-01-05', 1), ('2026-01-05', 'three'), ('2026-01-05', 2)"))
    engine.dispose()
    for batch_rows in (100, 1):  # one batch, and types differing between batches
        source = SqlSource("SELECT n FROM counts WHERE day = :day", url=url, batch_rows=batch_rows)
        pulled = pull_day(source, tmp_path / "archive", "counts", DAY)
        result = validate_files([pulled["archive_path"]], pa.DataFrameSchema({"n": pa.Column(int)}))
        assert (result.rows_valid, result.rows_quarantined) == (2, 1)
        assert result.quarantine["n"].tolist() == ["three"]

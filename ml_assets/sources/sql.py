"""A day's rows from a SQL database (any SQLAlchemy URL), archived as one Parquet file.

The rows keep the types the database gives them (numbers, dates, timestamps, NULLs), so the
validator sees what the database holds; a value a column cannot hold (SQLite stores anything
anywhere) turns the column into text, and validation quarantines the bad values one by one.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml_assets.sources.base import SourceError, mask_url

_URL_EXAMPLE = "postgresql+psycopg2://user:password@host:5432/db"


@dataclass(frozen=True)
class SqlSource:
    """`query` selects one day's rows and filters on the `:day` bind parameter (a date). Or give `table` and
    `date_column` instead: `SELECT * FROM table WHERE date_column = :day`, identifiers quoted by SQLAlchemy
    (`schema.table` names a schema). For a timestamp column write the query as a range:
    `WHERE ts >= :day AND ts < :day + INTERVAL '1 day'`.

    The database URL is read from the environment variable `url_env` when the day is pulled (secrets
    stay out of code and config); `url` overrides it (tests). A day without rows is an error.

    Re-pulling unchanged rows archives identical bytes only if they come back in the same order: give
    `query` an ORDER BY; the `table` form sorts the rows itself.
    """

    query: str | None = None
    url_env: str = "ML_ASSETS_SOURCE_URL"
    url: str | None = field(default=None, repr=False)  # may hold a password: never in a repr or log line
    table: str | None = None
    date_column: str | None = None
    batch_rows: int = 100_000  # rows fetched per round trip: Python holds only one batch of rows at a time

    def __post_init__(self):
        if (self.query is None) == (self.table is None and self.date_column is None):
            raise ValueError("SqlSource: give either query=... (with :day) or table=... and date_column=...")
        if self.query is None and not (self.table and self.date_column):
            raise ValueError("SqlSource: the table form needs both table=... and date_column=...")
        if self.query is not None and "day" not in sa.text(self.query).compile().params:
            raise ValueError(f"SqlSource: the query must filter on the :day bind parameter: {self.query!r}")

    def describe(self) -> str:
        where = mask_url(self.url) if self.url else f"${self.url_env}"
        what = f"table {self.table}" if self.table else f"query {' '.join(self.query.split())[:100]}"
        return f"SQL {where} {what}"

    def pull(self, dataset: str, day: date) -> tuple[str, bytes, str]:
        url = self._url()
        try:
            engine = sa.create_engine(url, poolclass=NullPool)  # one connection per pull, closed after
        except ImportError as err:  # e.g. postgresql:// means psycopg 3 to SQLAlchemy 2.1
            raise self._error(url, f"no database driver for this URL ({err})",
                              f"install the driver, or name an installed one in the URL (e.g. {_URL_EXAMPLE})")
        except sa.exc.ArgumentError as err:
            raise self._error(url, f"not a usable database URL ({err})", f"write it as {_URL_EXAMPLE}")
        try:
            table = self._fetch(engine, url, day)
        finally:
            engine.dispose()
        if table.num_rows == 0:
            raise self._error(url, f"the query returned no rows for {day.isoformat()}",
                              "load the day upstream first, or check that the :day filter matches the date "
                              "column (a timestamp column needs a range, see SqlSource)")
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return f"{dataset}_{day.isoformat()}.parquet", buffer.getvalue(), "parquet"

    def _url(self) -> str:
        url = self.url or os.environ.get(self.url_env)
        if not url:
            raise SourceError(self.describe(), f"the environment variable {self.url_env} is not set",
                              f"set {self.url_env} to the database URL, e.g. {_URL_EXAMPLE}")
        return url

    def _statement(self) -> sa.Executable:
        day = sa.bindparam("day", type_=sa.Date())  # typed: SQLite gets 'YYYY-MM-DD', others a date
        if self.query is not None:
            return sa.text(self.query).bindparams(day)
        schema, _, name = self.table.rpartition(".")
        return (sa.select(sa.literal_column("*")).select_from(sa.table(name, schema=schema or None))
                .where(sa.column(self.date_column) == day))

    def _fetch(self, engine: sa.Engine, url: str, day: date) -> pa.Table:
        try:
            connection = engine.connect()
        except sa.exc.SQLAlchemyError as err:
            raise self._error(url, f"cannot connect ({_reason(err)})",
                              "check that the database is reachable and the URL is right"
                              + ("" if self.url else f" (${self.url_env})"))
        try:
            with connection:
                result = connection.execution_options(stream_results=True).execute(self._statement(), {"day": day})
                names = list(result.keys())
                if len(set(names)) < len(names):  # the validator looks columns up by name
                    raise self._error(url, f"the query returns a column name twice ({names})",
                                      "alias the columns apart")
                parts = [_to_arrow(names, rows) for rows in result.partitions(self.batch_rows)]
        except sa.exc.SQLAlchemyError as err:
            raise self._error(url, f"the query failed ({_reason(err)})",
                              "check the query, table and column names against the database")
        table = _combine(parts) if parts else pa.table({n: pa.array([], pa.null()) for n in names})
        return table.sort_by([(c, "ascending") for c in _sortable(table)]) if self.query is None else table

    def _error(self, url: str, problem: str, fix: str) -> SourceError:
        password = _password(url)
        if password:  # a driver may echo the password outside URL form
            problem = problem.replace(password, "***")
        return SourceError(self.describe(), mask_url(problem), fix)


def _password(url: str) -> str | None:
    try:
        return sa.make_url(url).password
    except sa.exc.ArgumentError:
        return None


def _reason(err: sa.exc.SQLAlchemyError) -> str:
    """The driver's own words, without SQLAlchemy's SQL, parameters and help link."""
    reason = getattr(err, "orig", None) or err
    return " ".join(str(reason).split())


def _to_arrow(names: list[str], rows: list) -> pa.Table:
    columns = list(zip(*rows)) if rows else [()] * len(names)
    return pa.Table.from_arrays([_column(values) for values in columns], names=names)


def _column(values) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # mixed values (1 and 'three' in one SQLite column): text, so validation quarantines the bad ones
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _combine(parts: list[pa.Table]) -> pa.Table:
    """One table from the fetched batches; a column typed differently in two batches becomes text."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {f.name for p in parts for f in p.schema if f.type != parts[0].schema.field(f.name).type}
        return pa.concat_tables([p.cast(pa.schema([pa.field(f.name, pa.string()) if f.name in mixed else f
                                                   for f in p.schema])) for p in parts],
                                promote_options="permissive")


def _sortable(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema if not (pa.types.is_null(f.type) or pa.types.is_nested(f.type))]

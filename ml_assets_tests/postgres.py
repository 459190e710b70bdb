"""Databases of a test's own on the machine's PostgreSQL (127.0.0.1:5432, trust auth by default)."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

PG = {"host": os.environ.get("ML_ASSETS_TEST_PG_HOST", "127.0.0.1"),
      "port": int(os.environ.get("ML_ASSETS_TEST_PG_PORT", "5432")),
      "user": os.environ.get("ML_ASSETS_TEST_PG_USER", "postgres")}


@contextmanager
def scratch_database(prefix: str = "ml_assets_test") -> Iterator[str]:
    """Create a uniquely named database; drop it (and every connection to it) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def sqlalchemy_url(database: str) -> str:
    """For MLflow and SQLAlchemy 2.1, whose default PostgreSQL driver (psycopg 3) is not installed."""
    return f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}"


def count_rows(database: str, table: str) -> int:
    with psycopg2.connect(dbname=database, **PG) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]

"""Where a dataset's days come from: the landing folder (`landing`, the resource the landing sensors
read), or a pull source, a SQL query or an HTTP JSON API, fetched per daily partition and archived as
one file exactly like a landed file, so validation, quarantine and accounting run unchanged. The pull
sources are pure Python (no Dagster): the ingestion assets wire a dataset's `source` to its `raw_` asset."""

from ml_assets.sources.base import DaySource, SourceError, archive_bytes, mask_url, pull_day
from ml_assets.sources.http import HttpJsonSource
from ml_assets.sources.sql import SqlSource

__all__ = ["DaySource", "HttpJsonSource", "SourceError", "SqlSource", "archive_bytes", "mask_url",
           "pull_day"]

"""Start-up checks of the scoring service: a store that does not exist is an error, not an empty one.

MLflow creates a new, empty database for any `sqlite:///` path it is given, and treats a path it
does not recognise as a local file store, so a typo in `--tracking-uri` would start a service that
says "no champion yet" forever. The service refuses to start instead, naming the URI and the fix.
A remote store (http, databases) is not probed here: unreachable at start-up is a runtime state
(the service starts degraded and follows the registry once it answers).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

REMOTE = {"http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc"}
LOCAL = {"sqlite", "file"}


class BadTrackingUri(ValueError):
    pass


def check_tracking_uri(uri: str) -> None:
    """Raise `BadTrackingUri` (with the problem and the fix) unless `uri` names an existing local
    store or a remote store of a scheme MLflow knows."""
    scheme = urlparse(uri).scheme.lower()
    base = scheme.split("+", 1)[0]  # postgresql+psycopg2, mysql+pymysql, ...
    fix = ("pass --tracking-uri of an existing store (e.g. sqlite:////abs/path/mlflow.db or http://host:5000), "
           "or run `make demo` first to create the platform's store")
    if base in REMOTE:
        return
    if scheme and base not in LOCAL and len(scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise BadTrackingUri(f"tracking URI {uri!r}: unknown scheme {scheme!r} (known: "
                             f"{', '.join(sorted(REMOTE | LOCAL))}); {fix}")
    path = _local_path(uri, base)
    if base == "sqlite":
        if not path.is_file():
            raise BadTrackingUri(f"tracking URI {uri!r}: the SQLite database {path} does not exist "
                                 f"(MLflow would create an empty one); {fix}")
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":  # an empty file too: MLflow would fill it with no models
                raise BadTrackingUri(f"tracking URI {uri!r}: {path} is not an MLflow SQLite database; {fix}")
    elif not path.is_dir():
        raise BadTrackingUri(f"tracking URI {uri!r}: the file store {path} does not exist; {fix}")


def _local_path(uri: str, base: str) -> Path:
    if base == "sqlite":  # sqlite:///relative/path or sqlite:////absolute/path
        return Path(unquote(uri.split(":///", 1)[1] if ":///" in uri else uri.split("://", 1)[-1]))
    if base == "file":
        return Path(unquote(urlparse(uri).path))
    return Path(uri)

"""Locations that may be a local folder or object storage (any universal-pathlib URL: s3://, gs://, az://).

A local location stays a plain `pathlib.Path`, so the local-disk path keeps its exact behaviour
(fsync, read-only files, atomic renames). A URL becomes a `UPath` backed by fsspec; for s3:// that is
s3fs, which takes credentials and the endpoint from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for an S3-compatible server): nothing secret is configured here.
"""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath
from upath.implementations.cloud import CloudPath

Location = Path | UPath


def as_path(location: str | os.PathLike) -> Location:
    """`Path` for a local folder (or file:// URL), `UPath` for any other URL."""
    if isinstance(location, Path):
        return location
    if isinstance(location, UPath):
        return location if location.protocol not in ("", "file", "local") else Path(location.path)
    text = os.fspath(location)
    if "://" not in text:
        return Path(text)
    upath = UPath(text)
    return Path(upath.path) if upath.protocol in ("file", "local") else upath


def is_local(path: Location) -> bool:
    return isinstance(path, Path)


def refresh(path: Location) -> None:
    """Forget cached listings so objects written by other processes are seen: s3fs caches every
    listing for the life of the process, and a sensor lives as long as the daemon."""
    if not is_local(path):
        path.fs.invalidate_cache()


def signature(path: Location) -> list:
    """What changes when the file's content may have changed: [mtime_ns, size] on disk; on object
    storage [ETag, size], since LastModified has whole-second resolution and a rewrite within the
    same second would go unseen (every PUT gets a new ETag, except identical bytes, which is fine)."""
    stat = path.stat()
    if is_local(path):
        return [stat.st_mtime_ns, stat.st_size]
    info = stat.as_info() if hasattr(stat, "as_info") else {}
    return [str(info.get("ETag") or info.get("etag") or stat.st_mtime_ns), stat.st_size]


def ensure_parent(path: Location) -> None:
    """Create the folder a file goes in; object stores have none, and on S3 a `mkdir` of a missing
    bucket would create the bucket (a typo in a URL must fail, not make a new bucket)."""
    if not isinstance(path, CloudPath):
        path.parent.mkdir(parents=True, exist_ok=True)


def put_bytes(target: UPath, data: bytes) -> None:
    """One object written whole: an object store publishes a PUT atomically (readers see all of it
    or nothing), so no temporary name is needed as on disk."""
    ensure_parent(target)
    target.write_bytes(data)

"""What every day source shares: the error it raises, URL masking, and the raw archive it writes to.

A source turns (dataset, day) into one file's bytes; `archive_bytes` stores them exactly as a landed
file is archived (content-addressed, read-only, `<archive_root>/<dataset>/<day>/<sha16>_<name>`) and
describes them with the same dict, so validation, quarantine and accounting run unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Protocol, runtime_checkable

from ml_assets.core.landing import LandedFile
from ml_assets.core.storage import Location, as_path, is_local, put_bytes

FORMATS = {"csv": ".csv", "parquet": ".parquet"}  # what a source may produce: the validator reads both


class SourceError(ValueError):
    """A day could not be pulled from its source; nothing was archived."""

    def __init__(self, source: str, problem: str, fix: str):
        self.source, self.problem, self.fix = source, problem, fix
        super().__init__(f"{source}: {problem}. Fix: {fix}")


# greedy up to the last "@" of the authority: an unescaped "@" inside a password must not leak its tail
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<user>[^:/@\s]+):(?P<secret>[^\s/]*)@", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"(?P<name>[?&][^=&#\s]*(?:key|token|secret|pass|sig|auth)[^=&#\s]*=)(?P<value>[^&#\s]*)",
                           re.IGNORECASE)


def mask_url(text: str) -> str:
    """Hide passwords (`user:***@`) and secret-looking query values (`api_key=***`) anywhere in `text`:
    drivers quote the URL in their own messages, and error messages end up in logs and the UI."""
    text = _USERINFO.sub(lambda m: f"{m['scheme'] or ''}{m['user']}:***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['name']}***", text)


@runtime_checkable
class DaySource(Protocol):
    """Where a dataset's daily partition comes from, when not from files dropped in the landing folder."""

    def describe(self) -> str:
        """Where the data comes from, safe to show (no secrets)."""
        ...

    def pull(self, dataset: str, day: date) -> tuple[str, bytes, str]:
        """The day's content as (file name, bytes, file format "csv" or "parquet"); SourceError when it
        cannot be had (including a day without rows)."""
        ...


def _check_name(name: str, file_format: str) -> None:
    if file_format not in FORMATS:
        raise ValueError(f"file format {file_format!r}: expected one of {sorted(FORMATS)}")
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"file name {name!r}: expected a plain file name (no folders, not a dot-file)")
    if not name.endswith(FORMATS[file_format]):  # the validator picks its reader by the name's suffix
        raise ValueError(f"file name {name!r} does not end in {FORMATS[file_format]} for format {file_format!r}")


def archive_bytes(archive_root: Location | str, dataset: str, day: date | str, name: str, data: bytes,
                  file_format: str, origin: str | None = None) -> dict:
    """Store `data` at `<archive_root>/<dataset>/<day>/<sha16>_<name>`, read-only; describe it like a
    landed file. The same bytes again are a no-op (same path, same sha); other bytes get another path,
    so nothing archived is ever overwritten. `origin` fills `path` (default: the archive path)."""
    _check_name(name, file_format)
    day = day.isoformat() if isinstance(day, date) else date.fromisoformat(day).isoformat()
    sha = hashlib.sha256(data).hexdigest()
    target = as_path(archive_root) / dataset / day / f"{sha[:16]}_{name}"
    if not is_local(target):
        if not target.exists():
            put_bytes(target, data)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # a unique temporary name: two runs pulling the same day at once must not write one file together
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)  # atomic: readers see the whole file or none
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    # described as a landed file is (LandedFile + its archive copy); `path` says where it came from
    landed = LandedFile(path=origin or str(target), name=name, partition=day, file_format=file_format,
                        size=len(data), sha256=sha)
    return {**landed.to_dict(), "archive_path": str(target)}


def pull_day(source: DaySource, archive_root: Location | str, dataset: str, day: date | str) -> dict:
    """Pull the day from `source` and archive it: the dict the `raw_<dataset>` asset lists in `files`."""
    day = day if isinstance(day, date) else date.fromisoformat(day)
    name, data, file_format = source.pull(dataset, day)
    return archive_bytes(archive_root, dataset, day, name, data, file_format, origin=source.describe())

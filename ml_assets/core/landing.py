"""The landing zone: which files arrived for which day, their content hashes, and the raw archive."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

_NAME = re.compile(r"^(?P<dataset>[a-z][a-z0-9_]*?)_(?P<day>\d{4}-\d{2}-\d{2})(?:_[\w.-]+)?\.(?P<fmt>csv|parquet)$")


@dataclass(frozen=True)
class LandedFile:
    """One file as it was seen: identity is (name, sha256), not the path or the mtime."""

    path: str
    name: str
    partition: str
    file_format: str
    size: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_landing_name(name: str, dataset: str) -> tuple[str, str] | None:
    """Return (partition day, format) for a file of `dataset`, or None when the name is not ours."""
    match = _NAME.match(name)
    if not match or match["dataset"] != dataset:
        return None
    return match["day"], match["fmt"]


def scan_landing(root: Path, dataset: str) -> tuple[dict[str, list[Path]], list[Path]]:
    """Group the dataset's files by partition day; also return names that do not follow the pattern."""
    folder = Path(root) / dataset
    by_day: dict[str, list[Path]] = {}
    unrecognised: list[Path] = []
    if not folder.is_dir():
        return by_day, unrecognised
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):  # dot-files are writers' temp files
            continue
        parsed = parse_landing_name(path.name, dataset)
        if parsed is None:
            unrecognised.append(path)
        else:
            by_day.setdefault(parsed[0], []).append(path)
    return by_day, unrecognised


def describe_file(path: Path, dataset: str, sha256: str | None = None) -> LandedFile:
    parsed = parse_landing_name(path.name, dataset)
    if parsed is None:
        raise ValueError(f"{path.name} is not a {dataset} landing file: expected "
                         f"'{dataset}_YYYY-MM-DD[_suffix].csv' or '.parquet'")
    return LandedFile(path=str(path), name=path.name, partition=parsed[0], file_format=parsed[1],
                      size=path.stat().st_size, sha256=sha256 or sha256_file(path))


def run_key_for(dataset: str, partition: str, files: list[LandedFile]) -> str:
    """Same set of file contents for a day -> same key, so Dagster never ingests it twice."""
    content = "|".join(sorted(f"{f.name}:{f.sha256}" for f in files))
    return f"{dataset}:{partition}:{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def archive_file(landed: LandedFile, archive_root: Path, dataset: str) -> Path:
    """Copy the file, unchanged, to a content-addressed, read-only place in the raw archive.

    The landing file is only read. Re-archiving identical content is a no-op; different content
    under the same name gets a different archive path, so nothing archived is ever overwritten.
    """
    target = Path(archive_root) / dataset / landed.partition / f"{landed.sha256[:16]}_{landed.name}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(landed.path, tmp)
    if sha256_file(tmp) != landed.sha256:
        tmp.unlink()
        raise ValueError(f"{landed.name} changed while it was being archived; it will be picked up again")
    os.chmod(tmp, 0o444)
    os.replace(tmp, target)
    return target


@dataclass
class LandingCursor:
    """What a landing sensor has seen: file hashes (re-hashed only when size/mtime change)
    and, per partition, the run key it last requested."""

    hashes: dict[str, list] = field(default_factory=dict)  # path -> [mtime_ns, size, sha256]
    requested: dict[str, str] = field(default_factory=dict)  # partition -> run key

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        return cls(**json.loads(text)) if text else cls()

    def to_json(self) -> str:
        return json.dumps({"hashes": self.hashes, "requested": self.requested}, sort_keys=True)

    def describe(self, path: Path, dataset: str) -> LandedFile:
        stat = path.stat()
        cached = self.hashes.get(str(path))
        sha = cached[2] if cached and cached[:2] == [stat.st_mtime_ns, stat.st_size] else None
        landed = describe_file(path, dataset, sha256=sha)
        self.hashes[str(path)] = [stat.st_mtime_ns, stat.st_size, landed.sha256]
        return landed


def plan_ingestion(cursor: LandingCursor, by_day: dict[str, list[Path]], dataset: str,
                   is_partition: Callable[[str], bool]) -> tuple[list[tuple[str, str, list[LandedFile]]], list[str]]:
    """Decide which partitions to (re)ingest: those whose set of file contents is new.

    Returns ([(partition, run_key, files)], [days skipped because they are not valid partitions]).
    The cursor is updated in place; paths that disappeared are forgotten.
    """
    plans, not_partitions = [], []
    for day, paths in sorted(by_day.items()):
        if not is_partition(day):
            not_partitions.append(day)
            continue
        files = [cursor.describe(path, dataset) for path in paths]
        key = run_key_for(dataset, day, files)
        if cursor.requested.get(day) != key:
            cursor.requested[day] = key
            plans.append((day, key, files))
    present = {str(p) for paths in by_day.values() for p in paths}
    cursor.hashes = {p: v for p, v in cursor.hashes.items() if p in present}
    return plans, not_partitions

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

from ml_assets.core.storage import Location, as_path, ensure_parent, is_local, refresh, signature

_NAME = re.compile(r"^(?P<dataset>[a-z][a-z0-9_]*?)_(?P<day>\d{4}-\d{2}-\d{2})(?:_[\w.-]+)?"
                   r"\.(?P<fmt>csv\.gz|csv|parquet)$")
FORMATS = ".csv, .csv.gz or .parquet"


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


def sha256_file(path: Location | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with as_path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_landing_name(name: str, dataset: str) -> tuple[str, str] | None:
    """Return (partition day, format) for a file of `dataset`, or None when the name is not ours."""
    match = _NAME.match(name)
    if not match or match["dataset"] != dataset:
        return None
    return match["day"], match["fmt"]


@dataclass
class LandingScan:
    """What lies under <landing>/<dataset>/: the dataset's files by day, and everything else with a reason."""

    by_day: dict[str, list[Location]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)  # path relative to the folder -> why not ingested


def _name_problem(name: str, dataset: str) -> str:
    expected = f"expected {dataset}_YYYY-MM-DD[_suffix] with {FORMATS}"
    match = re.match(r"^(?P<dataset>[a-z][a-z0-9_]*?)_\d{4}-\d{2}-\d{2}", name)
    if match and match["dataset"] != dataset:
        return f"named for dataset {match['dataset']!r}, not {dataset!r}: move it to that dataset's folder"
    if match:
        return f"unsupported file type {''.join(Path(name).suffixes) or '(none)'}: {expected}"
    return f"the name does not carry the day: {expected}"


def scan_landing(root: Location | str, dataset: str) -> LandingScan:
    """Group the dataset's files by partition day; give every other entry of the folder a reason.

    Rule: only regular files directly in the folder, not starting with a dot, are ingested.
    Dot-files are writers' temporary files; files in subdirectories are never read (listed so
    nothing lands unseen). `root` may be a folder or an object-storage URL (s3://bucket/landing).
    """
    folder = as_path(root) / dataset
    scan = LandingScan()
    refresh(folder)  # a listing cached by an earlier tick would hide files landed since
    if not folder.is_dir():
        return scan
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            for inner in sorted(p for p in path.rglob("*") if p.is_file()):
                scan.ignored[str(inner.relative_to(folder))] = (
                    f"in subdirectory {path.name}/: only files directly in {folder} are ingested; move it up")
        elif path.name.startswith("."):
            scan.ignored[path.name] = "dot-file (a writer's temporary file): rename it to its final name when complete"
        elif (parsed := parse_landing_name(path.name, dataset)) is None:
            scan.ignored[path.name] = _name_problem(path.name, dataset)
        else:
            scan.by_day.setdefault(parsed[0], []).append(path)
    return scan


def describe_file(path: Location, dataset: str, sha256: str | None = None) -> LandedFile:
    parsed = parse_landing_name(path.name, dataset)
    if parsed is None:
        raise ValueError(f"{path.name} is not a {dataset} landing file: expected "
                         f"'{dataset}_YYYY-MM-DD[_suffix]' with {FORMATS}")
    return LandedFile(path=str(path), name=path.name, partition=parsed[0], file_format=parsed[1],
                      size=path.stat().st_size, sha256=sha256 or sha256_file(path))


def run_key_for(dataset: str, partition: str, files: list[LandedFile]) -> str:
    """Same set of file contents for a day -> same key, so Dagster never ingests it twice."""
    content = "|".join(sorted(f"{f.name}:{f.sha256}" for f in files))
    return f"{dataset}:{partition}:{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def archive_file(landed: LandedFile, archive_root: Location | str, dataset: str) -> Location:
    """Copy the file, unchanged, to a content-addressed, read-only place in the raw archive.

    The landing file is only read. Re-archiving identical content is a no-op; different content
    under the same name gets a different archive path, so nothing archived is ever overwritten.
    Either side may be on object storage (then the archive is protected by the bucket's policy,
    not by file modes).
    """
    target = as_path(archive_root) / dataset / landed.partition / f"{landed.sha256[:16]}_{landed.name}"
    if target.exists():
        return target
    if not is_local(target) or not is_local(as_path(landed.path)):
        _copy_to_store(landed, target)
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


def _copy_to_store(landed: LandedFile, target: Location) -> None:
    """Stream the landed file into a temporary object, hashing what was read, and publish it under
    its final name only when the bytes are the ones hashed at landing (a server-side move on S3)."""
    tmp = target.with_name(f".{target.name}.tmp")
    digest = hashlib.sha256()
    ensure_parent(tmp)
    with as_path(landed.path).open("rb") as src, tmp.open("wb") as dst:
        while block := src.read(1 << 22):
            digest.update(block)
            dst.write(block)
    if digest.hexdigest() != landed.sha256:
        tmp.unlink()
        raise ValueError(f"{landed.name} changed while it was being archived; it will be picked up again")
    if is_local(target):
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    else:
        tmp.fs.mv(tmp.path, target.path)


@dataclass
class LandingCursor:
    """What a landing sensor has seen: file hashes (re-hashed only when size/mtime change), each
    file's size and mtime at the last ticks, and, per partition, the run key it last requested."""

    # a file's version is its mtime_ns on disk, its ETag on object storage (core.storage.signature)
    hashes: dict[str, list] = field(default_factory=dict)  # path -> [version, size, sha256]
    requested: dict[str, str] = field(default_factory=dict)  # partition -> run key
    seen: dict[str, list] = field(default_factory=dict)  # path -> [version, size, ticks seen unchanged]
    inventory: str = ""  # fingerprint of the last inventory recorded

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        """An older version's cursor keeps what it knew; a damaged one starts fresh (run keys still
        stop a day from being ingested twice)."""
        try:
            known = json.loads(text) if text else {}
            return cls(**{k: v for k, v in known.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self, path: Location, dataset: str) -> LandedFile:
        version = signature(path)
        cached = self.hashes.get(str(path))
        sha = cached[2] if cached and cached[:2] == version else None
        landed = describe_file(path, dataset, sha256=sha)
        self.hashes[str(path)] = [*version, landed.sha256]
        return landed

    def settled(self, path: Location, ticks: int) -> bool:
        """Complete = size and version unchanged on `ticks` consecutive ticks (1: trust the first look)."""
        version = signature(path)
        last = self.seen.get(str(path))
        count = last[2] + 1 if last and last[:2] == version else 1
        self.seen[str(path)] = [*version, count]
        return count >= ticks


@dataclass
class IngestionPlan:
    requests: list[tuple[str, str, list[LandedFile]]] = field(default_factory=list)  # (day, run key, files)
    outside: dict[str, str] = field(default_factory=dict)  # file name -> its day, not a partition
    waiting: list[str] = field(default_factory=list)  # file names not yet complete
    unchanged: dict[str, tuple[str, str]] = field(default_factory=dict)  # file name -> (day, run key) requested earlier


def plan_ingestion(cursor: LandingCursor, by_day: dict[str, list[Location]], dataset: str,
                   is_partition: Callable[[str], bool], settle_ticks: int = 2) -> IngestionPlan:
    """Decide which partitions to (re)ingest: those whose files are all complete and whose set of
    file contents is new. The cursor is updated in place; paths that disappeared are forgotten."""
    plan = IngestionPlan()
    for day, paths in sorted(by_day.items()):
        if not is_partition(day):
            plan.outside.update({p.name: day for p in paths})
            continue
        settled = [cursor.settled(path, settle_ticks) for path in paths]
        if not all(settled):  # the whole day waits: ingesting part of it would ingest it twice
            plan.waiting += [p.name for p in paths]
            continue
        files = [cursor.describe(path, dataset) for path in paths]
        key = run_key_for(dataset, day, files)
        if cursor.requested.get(day) != key:
            cursor.requested[day] = key
            plan.requests.append((day, key, files))
        else:
            plan.unchanged.update({p.name: (day, key) for p in paths})
    present = {str(p) for paths in by_day.values() for p in paths}
    cursor.hashes = {p: v for p, v in cursor.hashes.items() if p in present}
    cursor.seen = {p: v for p, v in cursor.seen.items() if p in present}
    return plan

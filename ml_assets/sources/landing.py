"""The upstream landing zone and the immutable raw archive, as a configurable resource."""

import dagster as dg

from ml_assets import settings
from ml_assets.core.landing import (
    LandedFile,
    LandingScan,
    archive_file,
    describe_file,
    scan_landing,
)
from ml_assets.core.storage import Location, as_path


class LandingZoneResource(dg.ConfigurableResource):
    """Where upstream systems drop daily files, and where raw copies are archived.

    Paths default to the project's data directory (resolved when used, not at import); either may be
    an object-storage URL (s3://bucket/landing), with credentials and endpoint from the environment.
    """

    landing_dir: str | None = None
    archive_dir: str | None = None
    settle_ticks: int = 2
    """A file counts as landed once its size and mtime are unchanged on this many consecutive sensor
    ticks (2: one sensor interval, 30 s, without a change). 1 trusts writers that write to a
    dot-file and rename it when complete."""

    @property
    def landing_path(self) -> Location:
        return as_path(self.landing_dir) if self.landing_dir else settings.landing_dir()

    @property
    def archive_path(self) -> Location:
        return as_path(self.archive_dir) if self.archive_dir else settings.archive_dir()

    def scan(self, dataset: str) -> LandingScan:
        return scan_landing(self.landing_path, dataset)

    def files_for(self, dataset: str, partition: str) -> list[LandedFile]:
        return [describe_file(path, dataset) for path in self.scan(dataset).by_day.get(partition, [])]

    def archive(self, landed: LandedFile, dataset: str) -> Location:
        return archive_file(landed, self.archive_path, dataset)

"""The landing inventory: every file under a dataset's landing folder and what happened to it.

Recorded by the landing sensor as a materialization of `<dataset>_landing_inventory` whenever it
changes, and summarised in the sensor's skip reason, so no landed file goes unseen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ml_assets.core.landing import IngestionPlan, LandingScan

REQUESTED, WAITING, IGNORED = "requested", "waiting", "ignored"


@dataclass
class Inventory:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (file, status, detail)

    def by_status(self, status: str) -> list[tuple[str, str]]:
        return [(name, detail) for name, s, detail in self.rows if s == status]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.rows)).encode()).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        return {status: len(self.by_status(status)) for status in (REQUESTED, WAITING, IGNORED)}

    def markdown(self) -> str:
        lines = ["| file | status | detail |", "| --- | --- | --- |"]
        lines += [f"| {name} | {status} | {detail} |" for name, status, detail in sorted(self.rows)]
        return "\n".join(lines) if self.rows else "_the landing folder is empty_"

    def attention(self) -> str:
        """The files a user should know about, by name and reason (waiting and ignored ones)."""
        parts = [f"waiting: {name} ({detail})" for name, detail in self.by_status(WAITING)]
        return "; ".join(part for part in (*parts, self.ignored()) if part)

    def ignored(self) -> str:
        return "; ".join(f"ignored: {name} ({detail})" for name, detail in self.by_status(IGNORED))


def build_inventory(scan: LandingScan, plan: IngestionPlan, describe_outside) -> Inventory:
    """describe_outside(day) -> why that day is not a partition (e.g. the partitions' range)."""
    inventory = Inventory()
    # A requested file keeps its row on later ticks, so an unchanged folder records nothing new.
    for day, key, files in plan.requests:
        inventory.rows += [(f.name, REQUESTED, f"day {day}, run key {key}") for f in files]
    inventory.rows += [(name, REQUESTED, f"day {day}, run key {key}") for name, (day, key) in plan.unchanged.items()]
    inventory.rows += [(name, WAITING, "not complete yet: size or mtime changed since the last tick, or seen once")
                       for name in plan.waiting]
    inventory.rows += [(name, IGNORED, describe_outside(day)) for name, day in plan.outside.items()]
    inventory.rows += [(name, IGNORED, reason) for name, reason in scan.ignored.items()]
    return inventory

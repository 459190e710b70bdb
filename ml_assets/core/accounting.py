"""The checks of a validated batch, decided before any row moves downstream.

`row_accounting` and `quarantine_rate` block: a batch failing either is not stored as validated,
and the failure message says what failed, by how much, which file, and how to act on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ml_assets.core.validation import ValidationResult

BLOCKING = ("row_accounting", "quarantine_rate")


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    metadata: dict = field(default_factory=dict)
    description: str = ""


def duplicate_rows(result: ValidationResult) -> int:
    return sum(n for label, n in result.reason_counts.items() if label.endswith(":unique"))


def top_reasons(result: ValidationResult, n: int = 5) -> list[tuple[str, int]]:
    return sorted(result.reason_counts.items(), key=lambda item: (-item[1], item[0]))[:n]


def assess(result: ValidationResult, max_rate: float) -> list[CheckOutcome]:
    """The three checks of `validated_<dataset>`, with the figures the UI shows beside each."""
    accounting = {"records_in": result.records, "rows_valid": result.rows_valid,
                  "rows_quarantined": result.rows_quarantined_by_rules,
                  "rows_rejected_by_parser": result.rows_rejected_by_parser, "rows_parsed": result.rows_in,
                  "blank_lines": result.blank_lines, "redelivered_files": dict(result.redelivered)}
    lost = result.records - result.rows_valid - result.rows_quarantined
    produced = result.rows_valid + result.rows_quarantined
    mismatch = (f"{lost} record(s) missing" if lost > 0 else f"{-lost} row(s) more than the file's records") + (
        f": the file holds {result.records} records (counted on the raw file) but parsing and validation "
        f"accounted for {produced}")
    rate = {"quarantine_rate": round(result.quarantine_rate, 6), "max_rate": max_rate,
            "rows_quarantined": result.rows_quarantined, "records_in": result.records,
            "top_reasons": dict(top_reasons(result))}
    return [
        CheckOutcome("row_accounting", result.accounted, True, accounting,
                     "records_in == rows_valid + rows_quarantined + rows_rejected_by_parser" if result.accounted
                     else mismatch),
        CheckOutcome("quarantine_rate", result.quarantine_rate <= max_rate, True, rate,
                     f"{result.quarantine_rate:.1%} of {result.records} records quarantined (max {max_rate:.1%})"),
        CheckOutcome("duplicate_ids", duplicate_rows(result) == 0, False,
                     {"duplicate_rows_quarantined": duplicate_rows(result)}),
    ]


def failed_blocking(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    return [o for o in outcomes if o.blocking and not o.passed]


def override_command(dataset: str, partition: str, select: list[str], rate: float, module: str | None) -> str:
    """module: the code location's definitions module (None: not known where the step runs)."""
    config = json.dumps({"ops": {f"validate_{dataset}": {"config": {"max_quarantine_rate": rate}}}})
    return (f"dagster asset materialize -m {module or '<your definitions module>'} --select {','.join(select)} "
            f"--partition {partition} --config-json '{config}'")


def block_message(dataset: str, partition: str, result: ValidationResult, failed: list[CheckOutcome],
                  files: list[dict], select: list[str], removed: list[str],
                  module: str | None = None) -> str:
    """Why the partition is blocked, where the data is, and the two ways forward."""
    lines = [(f"validated_{dataset} {partition} is BLOCKED: {result.rows_valid} valid row(s) were not stored "
             "and nothing of this batch reaches features, training, scoring or drift.")]
    lines += [f"- {o.name} failed: {o.description}" for o in failed]
    if result.reason_counts:
        lines.append("- top reasons: " + ", ".join(f"{label} ({n})" for label, n in top_reasons(result)))
    lines += [f"- landing file: {f['path']} (archive copy: {f['archive_path']})" for f in files]
    lines.append(f"- rejected rows: quarantined_{dataset} partition {partition}")
    if removed:
        lines.append("- removed stored partitions of this day (they must not be loaded again): " + ", ".join(removed))
    if [o.name for o in failed] == ["quarantine_rate"]:
        wanted = min(1.0, round(result.quarantine_rate + 0.005, 3))
        lines.append("Fix the file and drop it again (new content re-ingests the day), or, to accept this batch, "
                     "re-run it with another threshold:")
        lines.append(f"  {override_command(dataset, partition, select, wanted, module)}")
        lines.append(f"  (launchpad run config: ops: validate_{dataset}: config: max_quarantine_rate: {wanted})")
    else:  # no threshold accepts records that went missing between the file and the rows
        lines.append("Fix the file and drop it again (new content re-ingests the day); a record count mismatch "
                     "cannot be accepted by config: report the file to the platform team if it is well-formed.")
    return "\n".join(lines)

"""Validate all of a day's landing files as one batch: keys repeated across files are duplicates,
and a file that repeats an earlier file's rows exactly is a redelivery (reported, not duplicates)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema

from ml_assets.core.arrow_memory import prefer_jemalloc
from ml_assets.core.ingest import ParsedBatch, read_landing_file
from ml_assets.core.validation import ValidationResult, split_valid_rows


def _same_rows(a: ParsedBatch, b: ParsedBatch) -> bool:
    return (a.table.num_rows == b.table.num_rows and a.table.schema == b.table.schema and a.table.equals(b.table)
            and [m.text for m in a.malformed] == [m.text for m in b.malformed])


def _read_unique(paths: list, names: list[str], schema) -> tuple[list[ParsedBatch], dict[str, str]]:
    batches, redelivered = [], {}
    for path, name in zip(paths, names):
        batch = read_landing_file(path, schema, name=name)
        earlier = next((b.source for b in batches if _same_rows(b, batch)), None)
        if earlier is None:
            batches.append(batch)
        else:
            redelivered[name] = earlier
    return batches, redelivered


def validate_files(paths: list, schema: pa_schema.DataFrameSchema, not_after: dict[str, date] | None = None,
                   names: list[str] | None = None) -> ValidationResult:
    """Validate a day's files (`names`: their landing names, when `paths` are archive copies)."""
    if not paths:
        raise ValueError("validate_files needs at least one file")
    prefer_jemalloc()
    names = names or [Path(p).name for p in paths]
    batches, redelivered = _read_unique(paths, names, schema)
    results = [split_valid_rows(batch, schema, not_after) for batch in batches]
    if len(results) == 1:
        results[0].redelivered = redelivered
        return results[0]
    valid = pd.concat([r.valid for r in results], ignore_index=True)
    source = np.repeat([b.source for b in batches], [r.rows_valid for r in results])
    counts = Counter()
    for r in results:
        counts.update(r.reason_counts)
    quarantine = [r.quarantine for r in results]
    if schema.unique:
        keys = list(schema.unique)
        dup = valid.duplicated(keys, keep="first").to_numpy()
        if dup.any():
            moved = valid[dup].astype(str).astype(object)
            label = f"{'+'.join(keys)}:unique"
            moved["quarantine_reason"] = label + "=" + moved[keys].agg(",".join, axis=1) + " (in an earlier file)"
            moved["source_file"], moved["source_row"] = source[dup], pd.array([None] * dup.sum(), dtype="Int64")
            quarantine.append(moved)
            counts[label] += int(dup.sum())
            valid = valid[~dup].reset_index(drop=True)
    for name, col in schema.columns.items():
        if str(col.dtype) == "category":  # concat of differing categories falls back to object
            valid[name] = valid[name].astype("category")
    counted = [r.records_in for r in results]
    utc = Counter()
    for r in results:
        utc.update(r.utc_converted)
    return ValidationResult(
        valid=valid, quarantine=pd.concat(quarantine, ignore_index=True), rows_in=sum(r.rows_in for r in results),
        reason_counts=dict(counts), extra_columns=sorted({c for r in results for c in r.extra_columns}),
        records_in=None if None in counted else sum(counted),
        rows_rejected_by_parser=sum(r.rows_rejected_by_parser for r in results),
        blank_lines=sum(r.blank_lines for r in results), utc_converted=dict(utc), redelivered=redelivered)

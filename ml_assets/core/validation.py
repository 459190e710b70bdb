"""Split a parsed batch into valid rows and quarantined rows with reasons.

The rules are the pandera schema's own checks, evaluated vectorised with pyarrow.compute (the
pandera object is the single contract; this module only runs it fast and per row). A check this
module has no Arrow translation for is run through pandera itself, so nothing is ever skipped.
`rows_in` is what the parser produced; `records_in` was counted on the raw file independently
(ml_assets.core.records), so the row_accounting check can catch rows lost while parsing.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa
import pyarrow.compute as pc

from ml_assets.core.ingest import ParsedBatch, encode_key


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int  # rows the parser produced (well-formed and malformed)
    reason_counts: dict[str, int]
    extra_columns: list[str] = field(default_factory=list)  # not in the contract; kept in the raw archive
    records_in: int | None = None  # counted on the raw bytes / the Parquet footer; None: not counted
    rows_rejected_by_parser: int = 0  # malformed lines (they are in the quarantine table too)
    blank_lines: int = 0  # empty lines: skipped, reported, not records
    utc_converted: dict[str, int] = field(default_factory=dict)  # column -> values converted to UTC
    redelivered: dict[str, str] = field(default_factory=dict)  # file -> earlier file with the same rows

    @property
    def records(self) -> int:
        """The denominator of every rate: the independent count when there is one."""
        return self.rows_in if self.records_in is None else self.records_in

    @property
    def rows_quarantined_by_rules(self) -> int:
        return self.rows_quarantined - self.rows_rejected_by_parser

    @property
    def accounted(self) -> bool:
        """records_in == rows_valid + rows_quarantined (by the rules) + rows_rejected_by_parser."""
        return self.records == self.rows_valid + self.rows_quarantined_by_rules + self.rows_rejected_by_parser

    @property
    def rows_valid(self) -> int:
        return len(self.valid)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.records if self.records else 0.0


def _scalar(value, arrow_type: pa.DataType):
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.scalar(value, type=arrow_type)


def _arrow_check(name: str, stats: dict, arr):
    """Arrow translation of pandera's built-in checks; None when there is none."""
    bounds = ("min_value", "max_value", "value") if name != "str_length" else ()
    s = {k: _scalar(v, arr.type) if k in bounds and v is not None else v for k, v in stats.items()}
    simple = {"greater_than_or_equal_to": (pc.greater_equal, "min_value"),
              "greater_than": (pc.greater, "min_value"),
              "less_than_or_equal_to": (pc.less_equal, "max_value"),
              "less_than": (pc.less, "max_value"), "equal_to": (pc.equal, "value"),
              "not_equal_to": (pc.not_equal, "value")}
    if name in simple:
        op, key = simple[name]
        return op(arr, s[key])
    if name == "in_range":
        low = (pc.greater_equal if s["include_min"] else pc.greater)(arr, s["min_value"])
        return pc.and_(low, (pc.less_equal if s["include_max"] else pc.less)(arr, s["max_value"]))
    if name in ("isin", "notin"):
        found = pc.is_in(arr, value_set=pa.array(list(s["allowed_values" if name == "isin" else "forbidden_values"])))
        return found if name == "isin" else pc.invert(found)
    if name == "str_length":
        length, ok = pc.utf8_length(arr), pa.scalar(True)
        for key, op in (("min_value", pc.greater_equal), ("max_value", pc.less_equal), ("exact_value", pc.equal)):
            if s.get(key) is not None:
                ok = pc.and_(ok, op(length, s[key]))
        return ok
    if name == "str_matches":  # pandera uses re.match: anchored at the start only
        return pc.match_substring_regex(arr, f"^(?:{s['pattern']})")
    return None


def _failures(check: pa_schema.Check, arr: pa.ChunkedArray) -> np.ndarray:
    """Boolean mask of non-null values that fail `check`."""
    if pa.types.is_dictionary(arr.type):
        # Evaluate once per distinct value, then broadcast through the indices.
        parts = [pc.take(_failures_plain(check, chunk.dictionary), chunk.indices) for chunk in arr.chunks]
        return np.concatenate([pc.fill_null(p, False).to_numpy(zero_copy_only=False) for p in parts]
                              or [np.zeros(0, bool)])
    return _failures_plain(check, arr).to_numpy(zero_copy_only=False)


def _failures_plain(check: pa_schema.Check, arr) -> pa.Array:
    try:
        ok = _arrow_check(check.name, check.statistics or {}, arr)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. a regex RE2 cannot compile
        ok = None
    if ok is None:  # no translation: let pandera evaluate its own check; nulls are not its business
        present = arr.is_valid().to_numpy(zero_copy_only=False)
        passed = np.ones(len(arr), dtype=bool)
        passed[present] = check(arr.drop_null().to_pandas()).check_output.to_numpy()
        ok = pa.array(passed)
    failed = pc.fill_null(pc.invert(ok), False)
    return failed.combine_chunks() if isinstance(failed, pa.ChunkedArray) else failed


def _as_text(arr, idx: np.ndarray) -> pd.Series:
    picked = arr.take(pa.array(idx, type=pa.int64()))
    if pa.types.is_dictionary(picked.type):
        picked = picked.cast(picked.type.value_type)
    if pa.types.is_timestamp(picked.type):  # dates read back as they were written
        picked = pc.strftime(picked.cast(pa.timestamp("s"), safe=False), format="%Y-%m-%d %H:%M:%S")
        return pd.Series(picked.to_numpy(zero_copy_only=False), index=idx, dtype=object).str.removesuffix(" 00:00:00")
    return pd.Series(picked.cast(pa.string()).to_numpy(zero_copy_only=False), index=idx, dtype=object)


def _key_codes(batch: ParsedBatch, keys: list[str]) -> np.ndarray:
    """One integer per row, equal exactly when the rows' key columns are equal (nulls included)."""
    codes = None
    for key in keys:
        running = batch.key_codes.get(key)
        more, n_more = running.result() if running else encode_key(batch.table.column(key))
        if codes is None:
            codes = more  # already dense
        elif n_more > 1:  # a constant column (the day) changes nothing
            codes = pd.factorize(codes * n_more + more)[0]  # dense again, so the next fold cannot overflow
    return codes


def _duplicates(codes: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Rows (among candidates) whose key already appeared in an earlier candidate row."""
    dup = np.zeros(len(codes), dtype=bool)
    dup[candidate] = pd.Series(codes[candidate]).duplicated(keep="first").to_numpy()
    return dup


class _Reasons:
    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.parts: list[pd.Series] = []
        self.counts: Counter = Counter()

    def add(self, label: str, mask: np.ndarray, *values) -> None:
        """Mark rows in `mask`; `values` are the columns whose text the reason should quote."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        self.bad[idx] = True
        self.counts[label] += len(idx)
        if not values:
            self.parts.append(pd.Series(label, index=idx))
            return
        texts = [_as_text(v, idx).fillna("null") for v in values]
        quoted = texts[0].str.cat(texts[1:], sep=",") if len(texts) > 1 else texts[0]
        self.parts.append(label + "=" + quoted.str.slice(0, 80))

    def joined(self) -> pd.Series:
        if not self.parts:
            return pd.Series(dtype=object)
        every = pd.concat(self.parts)
        several = every.index.duplicated(keep=False)
        if not several.any():  # one reason per row: no joining at all
            return every.sort_index()
        joined = every[several].groupby(level=0).agg("; ".join)  # only rows with several reasons
        return pd.concat([every[~several], joined]).sort_index()


def _filter(table: pa.Table, keep: pa.Array) -> pa.Table:
    """Table.filter, one column per thread (a million-row table copies twice as fast on two cores)."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return pa.table(list(pool.map(lambda column: pc.filter(column, keep), table.columns)),
                        schema=table.schema)


_ARROW_STRINGS = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}.get


def _to_pandas(table: pa.Table, schema: pa_schema.DataFrameSchema) -> pd.DataFrame:
    # Text stays in Arrow memory (pandas' "string[pyarrow]"): a million keys as Python objects
    # cost more than the whole validation, and again when written to Parquet.
    df = table.to_pandas(types_mapper=_ARROW_STRINGS, use_threads=False)
    for name, col in schema.columns.items():
        dtype = str(col.dtype)
        if dtype == "category":  # drop categories only rejected rows used (bincount beats np.unique)
            used = np.bincount(df[name].cat.codes.to_numpy() + 1, minlength=len(df[name].cat.categories) + 1)[1:]
            if not used.all():
                df[name] = df[name].cat.remove_categories(df[name].cat.categories[used == 0])
        elif dtype == "int64" and df[name].dtype != np.int64:
            df[name] = df[name].astype(np.int64)  # coerced columns come back as float
    return df


def split_valid_rows(batch: ParsedBatch, schema: pa_schema.DataFrameSchema,
                     not_after: dict[str, date] | None = None) -> ValidationResult:
    """Apply the schema row by row; every input row ends up in exactly one of the two outputs."""
    table, n = batch.table, batch.table.num_rows
    reasons = _Reasons(n)
    _check_columns(batch, schema, not_after, reasons)
    if schema.unique:
        keys = list(schema.unique)
        dup = _duplicates(_key_codes(batch, keys), ~reasons.bad)
        reasons.add(f"{'+'.join(keys)}:unique", dup, *(table.column(k) for k in keys))
    valid = _to_pandas(_filter(table, pa.array(~reasons.bad)), schema)
    quarantine = _quarantine_frame(batch, schema, reasons)
    return ValidationResult(valid=valid, quarantine=quarantine, rows_in=batch.rows_in,
                            reason_counts=dict(reasons.counts), extra_columns=batch.extra_columns,
                            records_in=batch.records_counted, rows_rejected_by_parser=len(batch.malformed),
                            blank_lines=batch.blank_lines, utc_converted=dict(batch.utc_converted))


def _check_columns(batch: ParsedBatch, schema: pa_schema.DataFrameSchema, not_after: dict[str, date] | None,
                   reasons: _Reasons) -> None:
    table, n = batch.table, batch.table.num_rows
    for name, col in schema.columns.items():
        arr = table.column(name)
        raw = batch.raw_text.get(name)
        if name in batch.type_failures:
            reasons.add(f"{name}:dtype({col.dtype})", batch.type_failures[name], raw)
        type_failed = batch.type_failures.get(name, np.zeros(n, bool))
        if not col.nullable:
            reasons.add(f"{name}:not_nullable", arr.is_null().to_numpy(zero_copy_only=False) & ~type_failed)
        labelled = [(f"{name}:{check.name}", check) for check in col.checks]
        bound = (not_after or {}).get(name)
        if bound is not None:  # any time on the partition day (in UTC) is on it
            labelled.append((f"{name}:not_after({bound})", pa_schema.Check.less_than(pd.Timestamp(bound + timedelta(1)))))
        for label, check in labelled:
            failed = _failures(check, arr)
            if failed.any():
                reasons.add(label, failed, raw if raw is not None else arr)


def _quarantine_frame(batch: ParsedBatch, schema: pa_schema.DataFrameSchema, reasons: _Reasons) -> pd.DataFrame:
    idx = np.flatnonzero(reasons.bad)
    columns = {name: _as_text(batch.raw_text.get(name, batch.table.column(name)), idx).to_numpy()
               for name in schema.columns}
    rows = pd.DataFrame(columns, index=range(len(idx)))
    rows["quarantine_reason"] = reasons.joined().loc[idx].to_numpy() if len(idx) else []
    rows["source_row"] = pd.array(idx, dtype="Int64")
    malformed = pd.DataFrame({name: pd.Series([None] * len(batch.malformed), dtype=object) for name in schema.columns})
    malformed["quarantine_reason"] = [f"_row:malformed({m.problem})={m.text[:200]}" for m in batch.malformed]
    malformed["source_row"] = pd.array([None] * len(batch.malformed), dtype="Int64")
    if batch.malformed:
        reasons.counts["_row:malformed"] += len(batch.malformed)
    out = pd.concat([rows, malformed], ignore_index=True) if len(malformed) else rows
    out["source_file"] = batch.source
    text = {name: object for name in [*schema.columns, "quarantine_reason", "source_file"]}
    return out[[*schema.columns, "quarantine_reason", "source_file", "source_row"]].astype(text)

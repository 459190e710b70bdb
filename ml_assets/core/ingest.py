"""Read a landing file into Arrow, typed by the table contract, without losing a byte of meaning.

One multi-threaded pyarrow parse per file, straight into the contract's types. A column holding a
value of the wrong type is parsed as text and coerced value by value, so the bad values can be
quarantined with what they said. File-level problems raise
`LandingFileError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

NULL_TEXT = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
_ARROW_TYPES = {
    "int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "str": pa.string(),
    "category": pa.dictionary(pa.int32(), pa.string()), "datetime64[ns]": pa.timestamp("ns"),
}


class LandingFileError(ValueError):
    """The file as a whole cannot be ingested; nothing from it moves downstream."""

    def __init__(self, file: str, problem: str, fix: str):
        self.file, self.problem, self.fix = file, problem, fix
        super().__init__(f"{file}: {problem}. Fix: {fix}")


@dataclass
class MalformedRow:
    line: int | None
    text: str
    problem: str


@dataclass
class ParsedBatch:
    """Contract columns of one file. `raw_text` keeps the original text of coerced columns."""

    source: str
    table: pa.Table
    type_failures: dict[str, np.ndarray] = field(default_factory=dict)
    raw_text: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    malformed: list[MalformedRow] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    key_codes: dict[str, Future] = field(default_factory=dict)  # encode_key of text key columns, running

    @property
    def rows_in(self) -> int:
        return self.table.num_rows + len(self.malformed)


def arrow_types(schema: pa_schema.DataFrameSchema) -> dict[str, pa.DataType]:
    try:
        return {name: _ARROW_TYPES[str(col.dtype)] for name, col in schema.columns.items()}
    except KeyError as err:
        raise ValueError(f"no Arrow type for pandera dtype {err}; supported: {sorted(_ARROW_TYPES)}") from None


def _check_header(name: str, header: list[str], expected: list[str]) -> list[str]:
    """Validate the column names; return the extra ones."""
    if len(header) == 1 and len(expected) > 1:
        for sep, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in header[0]:
                raise LandingFileError(name, f"the file is {label}-separated, expected commas",
                                       "re-export as comma-separated CSV")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise LandingFileError(name, f"duplicate column names {dupes}", "give every column a unique name")
    missing = [c for c in expected if c not in header]
    if missing:
        extra = [c for c in header if c not in expected]
        hints = [f"{m!r} (found {close[0]!r}?)" if (close := difflib.get_close_matches(
            m.lower(), [e.lower() for e in extra], n=1)) else repr(m) for m in missing]
        raise LandingFileError(name, f"missing required column(s) {', '.join(hints)}",
                               "restore the column names of the contract: " + ", ".join(expected))
    return [c for c in header if c not in expected]


def _read_header(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise LandingFileError(path.name, "the file is empty", "re-send the file with a header and rows")
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LandingFileError(path.name, "the header is not UTF-8 text (binary or another encoding)",
                               "send a UTF-8 encoded CSV") from None
    return next(csv.reader([text]))


def _read_csv(path: Path, types: dict[str, pa.DataType]) -> tuple[pa.Table, list[MalformedRow], list[str]]:
    header = _read_header(path)
    extra = _check_header(path.name, header, list(types))
    malformed: list[MalformedRow] = []

    def on_bad_row(row) -> str:
        malformed.append(MalformedRow(row.number, row.text[:500],
                                      f"expected {row.expected_columns} fields, got {row.actual_columns}"))
        return "skip"

    # A typed parse is the fastest, but one wrong-typed value fails it for the whole file. Columns
    # the first megabyte shows dirty are parsed as text (and coerced value by value later); a bad
    # value further down costs one more parse with that column as text.
    as_text = _dirty_columns(path, types)
    for _ in range(len(types) + 1):
        malformed.clear()
        convert = pcsv.ConvertOptions(
            include_columns=list(types), null_values=NULL_TEXT, strings_can_be_null=True,
            column_types={c: pa.string() if c in as_text else t for c, t in types.items()})
        try:
            table = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(invalid_row_handler=on_bad_row),
                                  convert_options=convert)
            return table, malformed, extra
        except pa.ArrowInvalid as err:
            msg = str(err)
            if "UTF8" in msg:
                raise LandingFileError(path.name, "the file is not valid UTF-8 text",
                                       "re-export the file as UTF-8") from None
            column = re.search(r"CSV column #(\d+)", msg)
            name = header[int(column.group(1))] if column else None
            if name is None or name in as_text or name not in types:
                raise LandingFileError(path.name, f"unreadable CSV ({msg})",
                                       "check the file is a complete, comma-separated CSV") from None
            as_text.add(name)
    raise AssertionError("unreachable: every column can be read as text")


_PROBE_BYTES = 1 << 20


def _dirty_columns(path: Path, types: dict[str, pa.DataType]) -> set[str]:
    """Typed columns whose values in the file's first megabyte do not all convert."""
    typed = {c for c, t in types.items() if not (pa.types.is_string(t) or pa.types.is_dictionary(t))}
    with open(path, "rb") as fh:
        head = fh.read(_PROBE_BYTES)
    if len(head) == _PROBE_BYTES:
        head = head[:head.rfind(b"\n") + 1]  # whole lines only
    try:
        sample = pcsv.read_csv(pa.BufferReader(head),
                               parse_options=pcsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                               convert_options=pcsv.ConvertOptions(
                                   include_columns=sorted(typed), null_values=NULL_TEXT, strings_can_be_null=True,
                                   column_types=dict.fromkeys(typed, pa.string())))
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        return typed  # an odd head (a quoted newline at the cut, no header line): all text, always correct
    dirty = set()
    for name in typed:
        try:
            sample.column(name).cast(types[name])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            dirty.add(name)
    return dirty


def _read_parquet(path: Path, types: dict[str, pa.DataType]) -> tuple[pa.Table, list[MalformedRow], list[str]]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise LandingFileError(path.name, f"unreadable Parquet ({err})",
                               "re-send a complete Parquet file") from None
    extra = _check_header(path.name, table.column_names, list(types))
    columns = {}
    for name, target in types.items():
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # the same null spellings as the CSV reader, so both formats mean the same thing
            column = pc.if_else(pc.is_in(column, value_set=pa.array(NULL_TEXT)), None, column.cast(pa.string()))
            if not (pa.types.is_string(target) or pa.types.is_dictionary(target)):
                columns[name] = column  # text bound for a number or a date: converted like CSV text
                continue
        try:
            columns[name] = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns[name] = column.cast(pa.string())  # e.g. 2.5 in an integer column: coerced value by value
    return pa.table(columns), [], extra


_NUMBER = {"int": r"^\s*[+-]?\d+(\.0*)?\s*$",  # "3" and "3.0" are counts; "2.5" is not
           # the spellings Arrow's own cast accepts, so a value means the same in clean and dirty columns
           "float": r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:inf|infinity|nan))\s*$"}


def _coerce_text(text: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Coerce text to `target`; return the values and a mask of non-null values that failed.

    Numbers stay in Arrow (a regex picks the parseable values, which then cast safely), so one
    bad value in a million does not push the whole column through Python objects.
    """
    if pa.types.is_timestamp(target):
        series = text.to_pandas()
        values = pd.to_datetime(series, errors="coerce", format="ISO8601")
        failed = (series.notna() & values.isna()).to_numpy()
        return pa.array(values, type=target, from_pandas=True), failed
    pattern = _NUMBER["int" if pa.types.is_integer(target) else "float"]
    parseable = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    failed = pc.and_(text.is_valid(), pc.invert(parseable)).to_numpy(zero_copy_only=False)
    numbers = pc.if_else(parseable, pc.utf8_trim_whitespace(text), None).cast(pa.float64())
    return numbers.combine_chunks(), failed  # ints with holes travel as float until validated


def encode_key(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Dense integer codes in order of first appearance (null is a value too), and how many."""
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def _convert(text: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.ChunkedArray | pa.Array, np.ndarray | None]:
    """Text -> `target`. A clean column takes one Arrow cast; a dirty one is coerced value by value."""
    try:
        return text.cast(target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _coerce_text(text, target)


def read_landing_file(path: Path | str, schema: pa_schema.DataFrameSchema) -> ParsedBatch:
    """Parse one CSV or Parquet landing file into the contract's columns and types.

    Hashing the unique-key text (a million distinct ids) is the largest single job of a batch and
    needs nothing but the parsed text, so it starts in the background right after the parse and
    runs beside the casts here and the checks in `split_valid_rows`.
    """
    path = Path(path)
    types = arrow_types(schema)
    if not path.is_file():
        raise LandingFileError(path.name, "the file does not exist", "check the landing path")
    reader = _read_parquet if path.suffix == ".parquet" else _read_csv
    table, malformed, extra = reader(path, types)
    batch = ParsedBatch(source=path.name, table=table, malformed=malformed, extra_columns=extra)
    text_keys = [k for k in schema.unique or [] if table.column(k).type == types[k]]
    if text_keys:
        hasher = ThreadPoolExecutor(1)
        batch.key_codes = {k: hasher.submit(encode_key, table.column(k)) for k in text_keys}
        hasher.shutdown(wait=False)  # the thread ends with its jobs
    pending = [name for name, target in types.items() if table.column(name).type != target]
    with ThreadPoolExecutor(max(1, min(len(pending), os.cpu_count() or 1))) as pool:  # Arrow releases the GIL
        converted = list(pool.map(lambda name: _convert(table.column(name), types[name]), pending))
    for name, (values, failed) in zip(pending, converted):
        column = table.column(name)
        if failed is not None:
            non_null = column.length() - column.null_count
            if non_null and failed.sum() == non_null:
                example = column.drop_null()[0].as_py()
                raise LandingFileError(path.name, f"column {name!r} holds no {types[name]} value at all "
                                       f"(e.g. {example!r})", "check the column order and type upstream")
            batch.raw_text[name], batch.type_failures[name] = column, failed
        table = table.set_column(table.schema.get_field_index(name), name, values)
    batch.table = table
    if batch.rows_in == 0:
        raise LandingFileError(path.name, "the file has a header but no data rows",
                               "send the day's rows, or no file at all for a day without data")
    return batch

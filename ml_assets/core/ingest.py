"""Read a landing file into Arrow, typed by the table contract, without losing a byte of meaning.

Fast path: pyarrow parses every contract column straight into its target type (multi-threaded).
Only when a column holds values of the wrong type is it re-read as text and coerced value by value,
so the bad values can be quarantined with what they said. File-level problems raise
`LandingFileError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import csv
import difflib
import re
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

    as_text: set[str] = set()
    for _ in range(len(types) + 1):  # each retry turns one more column to text
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
        try:
            columns[name] = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns[name] = column.cast(pa.string())  # coerced value by value below
    return pa.table(columns), [], extra


_NUMBER = {"int": r"^\s*[+-]?\d+(\.0*)?\s*$",  # "3" and "3.0" are counts; "2.5" is not
           "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"}


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


def read_landing_file(path: Path | str, schema: pa_schema.DataFrameSchema) -> ParsedBatch:
    """Parse one CSV or Parquet landing file into the contract's columns and types."""
    path = Path(path)
    types = arrow_types(schema)
    if not path.is_file():
        raise LandingFileError(path.name, "the file does not exist", "check the landing path")
    reader = _read_parquet if path.suffix == ".parquet" else _read_csv
    table, malformed, extra = reader(path, types)
    batch = ParsedBatch(source=path.name, table=table, malformed=malformed, extra_columns=extra)
    for name, target in types.items():
        column = table.column(name)
        if column.type == target or not pa.types.is_string(column.type):
            continue
        values, failed = _coerce_text(column, target)
        non_null = column.length() - column.null_count
        if non_null and failed.sum() == non_null:
            example = column.drop_null()[0].as_py()
            raise LandingFileError(path.name, f"column {name!r} holds no {target} value at all "
                                   f"(e.g. {example!r})", "check the column order and type upstream")
        batch.raw_text[name], batch.type_failures[name] = column, failed
        table = table.set_column(table.schema.get_field_index(name), name, values)
    batch.table = table
    if batch.rows_in == 0:
        raise LandingFileError(path.name, "the file has a header but no data rows",
                               "send the day's rows, or no file at all for a day without data")
    return batch

"""Read a landing file into Arrow, typed by the table contract, without losing a byte of meaning.

One multi-threaded pyarrow parse per file, straight into the contract's types. A column holding a
value of the wrong type is parsed as text and coerced value by value, so the bad values can be
quarantined with what they said. File-level problems raise
`LandingFileError` naming the file, the problem and the fix.

Time zones, one rule for CSV text and Parquet columns alike: a timestamp with an offset (`+02:00`,
`Z`) or a time-zone-aware Parquet column is converted to UTC; a timestamp without one is taken as
UTC. Values are stored as naive UTC, and a value's day is its UTC date. How many values were
converted is reported per column (`utc_converted`).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_assets.core.csv_input import check_header, read_csv
from ml_assets.core.file_errors import NULL_TEXT, LandingFileError, MalformedRow
from ml_assets.core.records import count_parquet_records
from ml_assets.core.storage import Location, as_path, is_local

__all__ = ["LandingFileError", "MalformedRow", "ParsedBatch", "encode_key", "read_landing_file"]

_ARROW_TYPES = {
    "int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "str": pa.string(),
    "category": pa.dictionary(pa.int32(), pa.string()), "datetime64[ns]": pa.timestamp("ns"),
}


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
    records_counted: int | None = None  # counted on the raw file, independently of the parser
    blank_lines: int = 0
    utc_converted: dict[str, int] = field(default_factory=dict)  # column -> values that carried an offset

    @property
    def rows_in(self) -> int:
        return self.table.num_rows + len(self.malformed)


def arrow_types(schema: pa_schema.DataFrameSchema) -> dict[str, pa.DataType]:
    try:
        return {name: _ARROW_TYPES[str(col.dtype)] for name, col in schema.columns.items()}
    except KeyError as err:
        raise ValueError(f"no Arrow type for pandera dtype {err}; supported: {sorted(_ARROW_TYPES)}") from None


def _read_parquet(path: Location, name: str, types: dict[str, pa.DataType]):
    try:
        if is_local(path):
            table, records = pq.read_table(path), count_parquet_records(path)
        else:  # read once through fsspec (Arrow would otherwise open s3:// with its own client and settings)
            data = pa.py_buffer(path.read_bytes())
            table, records = pq.read_table(pa.BufferReader(data)), count_parquet_records(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as err:
        raise LandingFileError(name, f"unreadable Parquet ({err})", "re-send a complete Parquet file") from None
    extra = check_header(name, table.column_names, list(types))
    columns, utc = {}, {}
    for column_name, target in types.items():
        column = table.column(column_name)
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            utc[column_name] = column.length() - column.null_count  # Arrow stores UTC: dropping the zone keeps it
            column = column.cast(pa.timestamp(column.type.unit))
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # the same null spellings as the CSV reader, so both formats mean the same thing
            column = pc.if_else(pc.is_in(column, value_set=pa.array(NULL_TEXT)), None, column.cast(pa.string()))
            if not (pa.types.is_string(target) or pa.types.is_dictionary(target)):
                columns[column_name] = column  # text bound for a number or a date: converted like CSV text
                continue
        try:
            columns[column_name] = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns[column_name] = column.cast(pa.string())  # e.g. 2.5 in an integer column: coerced value by value
    return pa.table(columns), [], extra, records, 0, utc


def _read_text(path: Location, name: str, types: dict[str, pa.DataType]):
    table, malformed, extra, counted = read_csv(path, name, types)
    return table, malformed, extra, counted.records, counted.blank_lines, {}


_OFFSET = r"(Z|[+-]\d{2}:?\d{2})\s*$"


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
        values = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
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


def read_landing_file(path: Location | str, schema: pa_schema.DataFrameSchema, name: str | None = None) -> ParsedBatch:
    """Parse one CSV (.csv, .csv.gz) or Parquet landing file into the contract's columns and types.

    `name` is the landing file's name, used in every message and as `source_file` (the file read may
    be its archive copy); it also decides the format. Default: the name of `path`.

    Hashing the unique-key text (a million distinct ids) is the largest single job of a batch and
    needs nothing but the parsed text, so it starts in the background right after the parse and
    runs beside the casts here and the checks in `split_valid_rows`.
    """
    path = as_path(path)
    name = name or path.name
    types = arrow_types(schema)
    if not path.is_file():
        raise LandingFileError(name, "the file does not exist", "check the landing path")
    reader = _read_parquet if name.endswith(".parquet") else _read_text
    table, malformed, extra, records, blank, utc = reader(path, name, types)
    batch = ParsedBatch(source=name, table=table, malformed=malformed, extra_columns=extra,
                        records_counted=records, blank_lines=blank, utc_converted=utc)
    text_keys = [k for k in schema.unique or [] if table.column(k).type == types[k]]
    if text_keys:
        hasher = ThreadPoolExecutor(1)
        batch.key_codes = {k: hasher.submit(encode_key, table.column(k)) for k in text_keys}
        hasher.shutdown(wait=False)  # the thread ends with its jobs
    pending = [c for c, target in types.items() if table.column(c).type != target]
    with ThreadPoolExecutor(max(1, min(len(pending), os.cpu_count() or 1))) as pool:  # Arrow releases the GIL
        converted = list(pool.map(lambda c: _convert(table.column(c), types[c]), pending))
    for column_name, (values, failed) in zip(pending, converted):
        column = table.column(column_name)
        if failed is not None:
            non_null = column.length() - column.null_count
            if non_null and failed.sum() == non_null:
                example = column.drop_null()[0].as_py()
                raise LandingFileError(name, f"column {column_name!r} holds no {types[column_name]} value at all "
                                       f"(e.g. {example!r})", "check the column order and type upstream")
            batch.raw_text[column_name], batch.type_failures[column_name] = column, failed
            if pa.types.is_timestamp(types[column_name]):
                offsets = pc.sum(pc.match_substring_regex(column, _OFFSET)).as_py() or 0
                if offsets:
                    batch.utc_converted[column_name] = offsets
        table = table.set_column(table.schema.get_field_index(column_name), column_name, values)
    batch.table = table
    if batch.rows_in == 0 and not batch.records_counted:
        raise LandingFileError(name, "the file has a header but no data rows",
                               "send the day's rows, or no file at all for a day without data")
    return batch

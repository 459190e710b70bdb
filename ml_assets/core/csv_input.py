"""Read a CSV landing file (plain or .csv.gz) into Arrow, typed by the contract where possible.

The bytes are loaded once (read, or decompressed), counted by `records.count_csv_records`
independently of the parser, then parsed by pyarrow from the same buffer. File-level problems
raise `LandingFileError` naming the landing file, the problem and the fix.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import re
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from ml_assets.core.file_errors import NULL_TEXT, LandingFileError, MalformedRow
from ml_assets.core.records import RecordCount, count_csv_records

# Magic bytes of formats that arrive under a .csv name by mistake: (label, fix).
_MAGIC = {b"\x1f\x8b": ("gzip-compressed", "name it '{name}.gz' (.csv.gz files are decompressed) or send it uncompressed"),
          b"PAR1": ("a Parquet file", "name it '{stem}.parquet'"),
          b"PK\x03\x04": ("a zip archive", "unzip it and drop the CSV inside")}
_PROBE_BYTES = 1 << 20


def load_csv_bytes(path: Path, name: str) -> bytes:
    """The file's CSV bytes, decompressed for .csv.gz. Read once: the record count and the parser
    (through a zero-copy Arrow buffer) share them."""
    if name.endswith(".gz"):
        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as err:
            raise LandingFileError(name, f"the file is named .gz but is not a complete gzip file ({err})",
                                   "re-send it gzip-compressed, or uncompressed without the .gz suffix") from None
    data = path.read_bytes()
    head = data[:4]
    for magic, (label, fix) in _MAGIC.items():
        if head.startswith(magic):
            raise LandingFileError(name, f"the file is {label}, not CSV text",
                                   fix.format(name=name, stem=name.removesuffix(".csv")))
    return data


def _read_header(data: bytes, name: str) -> list[str]:
    head = data[:1 << 16]
    if not head.strip():
        raise LandingFileError(name, "the file is empty", "re-send the file with a header and rows")
    if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
        raise LandingFileError(name, "the lines end with a carriage return only (classic Mac line endings)",
                               "save the file with LF or CRLF line endings")
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LandingFileError(name, "the header is not UTF-8 text (binary or another encoding)",
                               "send a UTF-8 encoded CSV") from None
    try:
        return next(csv.reader([text]))
    except csv.Error as err:
        raise LandingFileError(name, f"the header line cannot be read as CSV ({err})",
                               "send a comma-separated header line of column names") from None


def check_header(name: str, header: list[str], expected: list[str]) -> list[str]:
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


def _dirty_columns(data: bytes, types: dict[str, pa.DataType]) -> set[str]:
    """Typed columns whose values in the file's first megabyte do not all convert."""
    typed = {c for c, t in types.items() if not (pa.types.is_string(t) or pa.types.is_dictionary(t))}
    head = data[:_PROBE_BYTES]
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
    for column in typed:
        try:
            sample.column(column).cast(types[column])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            dirty.add(column)
    return dirty


def read_csv(path: Path, name: str, types: dict[str, pa.DataType],
             ) -> tuple[pa.Table, list[MalformedRow], list[str], RecordCount]:
    data = load_csv_bytes(path, name)
    header = _read_header(data, name)
    extra = check_header(name, header, list(types))
    counted = count_csv_records(data)  # ~0.1 s per 100 MB; it also tells the parser about quoted newlines
    return *_parse(data, name, header, types, newlines_in_values=counted.quoted_newlines > 0), extra, counted


def _parse(data: bytes, name: str, header: list[str], types: dict[str, pa.DataType],
           newlines_in_values: bool) -> tuple[pa.Table, list[MalformedRow]]:
    malformed: list[MalformedRow] = []

    def on_bad_row(row) -> str:
        malformed.append(MalformedRow(row.number, row.text[:500],
                                      f"expected {row.expected_columns} fields, got {row.actual_columns}"))
        return "skip"

    # Quoted newlines slow the multi-threaded parse, so the parser allows them only when the count saw some.
    parse = pcsv.ParseOptions(invalid_row_handler=on_bad_row, newlines_in_values=newlines_in_values)
    # A typed parse is the fastest, but one wrong-typed value fails it for the whole file. Columns
    # the first megabyte shows dirty are parsed as text (and coerced value by value later); a bad
    # value further down costs one more parse with that column as text.
    as_text = _dirty_columns(data, types)
    for _ in range(len(types) + 1):
        malformed.clear()
        convert = pcsv.ConvertOptions(
            include_columns=list(types), null_values=NULL_TEXT, strings_can_be_null=True,
            column_types={c: pa.string() if c in as_text else t for c, t in types.items()})
        try:
            table = pcsv.read_csv(pa.BufferReader(pa.py_buffer(data)), parse_options=parse, convert_options=convert)
            return table, malformed
        except pa.ArrowInvalid as err:
            msg = str(err)
            if "UTF8" in msg:
                raise LandingFileError(name, "the file is not valid UTF-8 text", "re-export the file as UTF-8") from None
            column = re.search(r"CSV column #(\d+)", msg)
            bad = header[int(column.group(1))] if column else None
            if bad is None or bad in as_text or bad not in types:
                raise LandingFileError(name, f"unreadable CSV ({msg})",
                                       "check the file is a complete, comma-separated CSV") from None
            as_text.add(bad)
    raise AssertionError("unreachable: every column can be read as text")

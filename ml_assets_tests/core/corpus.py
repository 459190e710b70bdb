"""Builders for the bad-input corpus: a clean customers CSV and ways to break it."""

from datetime import date

DAY = date(2026, 1, 5)
NAME = "customers_2026-01-05.csv"

CLEAN_HEADER = ("customer_id,snapshot_date,tenure_months,contract,monthly_charges,total_charges,"
                "payment_method,internet_service,support_calls,num_products,is_senior,has_partner,region")
CLEAN_ROWS = [
    "C0000001,2026-01-05,12,month_to_month,70.5,846.0,electronic_check,fiber_optic,1,2,0,1,north",
    "C0000002,2026-01-05,40,two_year,25.0,1000.0,bank_transfer,none,0,1,1,0,south",
    "C0000003,2026-01-05,0,one_year,55.25,,credit_card,dsl,3,3,0,0,east",
    "C0000004,2026-01-05,7,month_to_month,99.9,699.3,mailed_check,fiber_optic,5,1,1,1,west",
]


def write_landing(tmp_path, content, name=NAME):
    """A landing file of `content` (text or bytes) under tmp_path."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def csv_text(rows=None, header=CLEAN_HEADER) -> str:
    return "\n".join([header, *(CLEAN_ROWS if rows is None else rows)]) + "\n"


def replace_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def with_blank_lines(text: str) -> str:
    """The clean file with an empty line, a CRLF-empty line and a trailing empty line."""
    lines = text.splitlines()
    return "\n".join([lines[0], lines[1], "", lines[2], "\r", *lines[3:], ""]) + "\n"


# The same four instants, written with offsets; each pair is (as written, UTC value stored).
OFFSET_DATES = [("2026-01-05T01:00:00+02:00", "2026-01-04 23:00:00"),  # UTC day: the 4th
                ("2026-01-05T00:00:00Z", "2026-01-05 00:00:00"),
                ("2026-01-05T09:30:00-0300", "2026-01-05 12:30:00"),
                ("2026-01-05", "2026-01-05 00:00:00")]  # no offset: taken as UTC
AFTER_THE_DAY_IN_UTC = "2026-01-05T23:30:00-02:00"  # 01:30 on the 6th in UTC


def dated_rows(dates: list[str]) -> list[str]:
    return [replace_field(CLEAN_ROWS[i % 4].replace("C000000", f"C00{i:02d}"), 1, day) for i, day in enumerate(dates)]

"""Builders for the bad-input corpus: a clean customers CSV and ways to break it."""

CLEAN_HEADER = ("customer_id,snapshot_date,tenure_months,contract,monthly_charges,total_charges,"
                "payment_method,internet_service,support_calls,num_products,is_senior,has_partner,region")
CLEAN_ROWS = [
    "C0000001,2026-01-05,12,month_to_month,70.5,846.0,electronic_check,fiber_optic,1,2,0,1,north",
    "C0000002,2026-01-05,40,two_year,25.0,1000.0,bank_transfer,none,0,1,1,0,south",
    "C0000003,2026-01-05,0,one_year,55.25,,credit_card,dsl,3,3,0,0,east",
    "C0000004,2026-01-05,7,month_to_month,99.9,699.3,mailed_check,fiber_optic,5,1,1,1,west",
]


def csv_text(rows=None, header=CLEAN_HEADER) -> str:
    return "\n".join([header, *(CLEAN_ROWS if rows is None else rows)]) + "\n"


def replace_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)

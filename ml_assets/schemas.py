"""Table contracts shared by every problem: the quarantine layout derived from a dataset schema.

Problem-specific DataFrameModels live with their problem (ml_assets/problems/<name>.py); this
module derives what the platform needs from them, so each contract is written exactly once.
"""

from __future__ import annotations

import pandera.pandas as pa

QUARANTINE_COLUMNS = ("quarantine_reason", "source_file", "source_row")


def quarantine_schema(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    """Rejected rows keep every contract column as the text that arrived, plus why and where from."""
    base = model.to_schema()
    columns = {name: pa.Column(str, nullable=True, required=False) for name in base.columns}
    columns["quarantine_reason"] = pa.Column(
        str, pa.Check.str_length(min_value=1), description="'; '-joined column:check=value items")
    columns["source_file"] = pa.Column(str, description="landing file the row came from")
    columns["source_row"] = pa.Column(
        "Int64", nullable=True,
        description="0-based index among well-formed records; null for unparseable lines")
    return pa.DataFrameSchema(columns, name=f"{base.name}Quarantine", strict=True,
                              description=f"Rows of {base.name} rejected by validation, with reasons.")

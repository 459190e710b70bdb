"""The request contract of the scoring service, derived from the pipeline's pandera schema.

One source of truth: the same `DataFrameSchema` that validates landed files is turned into a
pydantic model here (types, bounds, allowed values, lengths, patterns, nullability, strictness),
so the service cannot drift from the pipeline. An unknown pandera check is an error at start-up,
not a silently weaker contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

# pandera check name -> pydantic Field keyword for its statistic
_BOUNDS = {"greater_than_or_equal_to": ("ge", "min_value"), "greater_than": ("gt", "min_value"),
           "less_than_or_equal_to": ("le", "max_value"), "less_than": ("lt", "max_value")}


def _python_type(column: pa.Column) -> Any:
    dtype = str(column.dtype)
    if dtype.startswith(("int", "uint")):
        return StrictInt  # 3.0 or "3" for an integer column is a client bug, not something to guess at
    if dtype.startswith("float"):
        return StrictFloat
    if dtype.startswith("datetime"):
        return datetime  # ISO-8601 strings: JSON has no date type
    if dtype in ("str", "string", "category", "object"):
        return StrictStr
    if dtype == "bool":
        return bool
    raise TypeError(f"column {column.name!r}: no request type for dtype {dtype}")


def _field(column: pa.Column) -> tuple[Any, Any]:
    kind, constraints = _python_type(column), {}
    for check in column.checks:
        stats = check.statistics
        if check.name in _BOUNDS:
            keyword, stat = _BOUNDS[check.name]
            constraints[keyword] = stats[stat]
        elif check.name == "in_range":
            constraints["ge" if stats.get("include_min", True) else "gt"] = stats["min_value"]
            constraints["le" if stats.get("include_max", True) else "lt"] = stats["max_value"]
        elif check.name == "isin":
            kind = Literal[tuple(stats["allowed_values"])]
        elif check.name == "str_length":
            constraints.update({k: v for k, v in (("min_length", stats.get("min_value")),
                                                  ("max_length", stats.get("max_value"))) if v is not None})
        elif check.name == "str_matches":
            constraints["pattern"] = stats["pattern"]
        else:
            raise ValueError(f"column {column.name!r}: pandera check {check.name!r} has no request equivalent")
    for key in ("ge", "gt", "le", "lt"):  # bounds on datetimes arrive as pandas Timestamps
        if isinstance(constraints.get(key), pd.Timestamp):
            constraints[key] = constraints[key].to_pydatetime()
    description = column.description or None
    if column.nullable:
        return kind | None, Field(None, description=description, **constraints)
    return kind, Field(..., description=description, **constraints)


def record_model(schema: pa.DataFrameSchema, name: str) -> type[BaseModel]:
    """One input record. Strict schemas forbid unknown fields; NaN and infinity are never valid JSON inputs."""
    config = ConfigDict(extra="forbid" if schema.strict else "ignore", allow_inf_nan=False,
                        title=name, json_schema_extra={"description": f"derived from the pandera schema {schema.name}"})
    fields = {str(name_): _field(column) for name_, column in schema.columns.items()}
    return create_model(name, __config__=config, **fields)


def batch_model(record: type[BaseModel], max_records: int) -> type[BaseModel]:
    config = ConfigDict(extra="forbid", title=f"{record.__name__}Batch")
    return create_model(f"{record.__name__}Batch", __config__=config,
                        records=(list[record], Field(..., min_length=1, max_length=max_records)))


class RecordColumns:
    """Validated records -> one numpy array per column, exactly `records_frame(...)[c].to_numpy()`
    (what a `columnwise` feature function gets in training), without building the frame. Each
    column's kind is worked out once: `str()` of a pandera dtype costs microseconds, per column."""

    def __init__(self, schema: pa.DataFrameSchema):
        self.plan = []
        for name, column in schema.columns.items():
            dtype = str(column.dtype)
            kind = "datetime" if dtype.startswith("datetime") else "number" if dtype.startswith(
                ("int", "uint", "float")) else "category" if dtype == "category" else "object"
            self.plan.append((name, kind, dtype))

    def __call__(self, records: list[BaseModel]) -> dict[str, np.ndarray]:
        rows, columns = [r.__dict__ for r in records], {}
        for name, kind, dtype in self.plan:
            values = [row[name] for row in rows]
            if kind == "number":
                columns[name] = np.array(values, dtype=float if None in values else dtype)  # None -> NaN
            elif kind == "datetime":  # naive UTC, as landed; aware inputs are converted
                columns[name] = pd.to_datetime(values, utc=True).tz_localize(None).to_numpy() \
                    if any(v is not None and v.tzinfo is not None for v in values) else \
                    np.array(values, dtype="datetime64[ns]")
            elif kind == "category" and None in values:  # a Categorical's values: missing is NaN
                columns[name] = np.array([np.nan if v is None else v for v in values], dtype=object)
            else:
                columns[name] = np.array(values, dtype=object)
        return columns


def records_columns(records: list[BaseModel], schema: pa.DataFrameSchema) -> dict[str, np.ndarray]:
    return RecordColumns(schema)(records)


def columns_frame(columns: dict[str, np.ndarray], schema: pa.DataFrameSchema) -> pd.DataFrame:
    """`records_columns` as a frame with the schema's dtypes (categoricals as Categorical)."""
    return pd.DataFrame({name: pd.Categorical(values) if str(schema.columns[name].dtype) == "category" else values
                         for name, values in columns.items()})


def records_frame(records: list[BaseModel], schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Validated records -> a frame with the schema's dtypes, what the pipeline's features expect."""
    return columns_frame(records_columns(records, schema), schema)


def duplicate_keys(records: list[BaseModel], schema: pa.DataFrameSchema) -> list[dict]:
    """Records repeating the schema's unique key within one request (the contract says they are unique)."""
    unique, seen, dupes = list(schema.unique or []), set(), []
    if not unique or len(records) < 2:
        return []
    for record in records:
        key = tuple(getattr(record, column) for column in unique)
        if key in seen:
            dupes.append({column: str(value) for column, value in zip(unique, key)})
        seen.add(key)
    return dupes

"""Dagster types from pandera schemas, one object per schema name.

Dagster refuses two different type objects with one name in a code location, and every landed
problem has a drift report, a performance table, …: the same schema gets the same type object.
Two *different* schemas under one name get two types, and Dagster reports the clash if both end up
in one code location.

The type check is pandera's lazy validation of the schema, as in dagster-pandera, except for the
steps pandera does one Python call per element: the `str` dtype check (`isinstance(x, str)` for
every value, even of a `string[pyarrow]` column) and, for such a column, the not-null check. Those
are decided first by a vectorised test that can only say "holds" when pandera's own step would pass
(`proven_schema`); what it proves is left out of the validation, everything else — and anything it
cannot prove — pandera checks and reports as usual. The validated output's `unique` key was just
enforced by the core validator (vectorised, on the same rows), so its check reuses that result
(`keys_enforced`). The schema stays the only statement of the contract; a 1M-row frame is checked
in a fraction of the time (BENCHMARKS.md, ingestion).
"""

from __future__ import annotations

import copy
import weakref

import dagster as dg
import pandas as pd
import pandera.errors
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type
from pandera.engines.pandas_engine import NpString

_BUILT: dict[str, list[tuple[pa.DataFrameSchema, dg.DagsterType]]] = {}
_ENFORCED: dict[int, weakref.ref] = {}  # id -> frame whose unique key the validator enforced


def dagster_type(schema: pa.DataFrameSchema | type[pa.DataFrameModel]) -> dg.DagsterType:
    frame = schema.to_schema() if isinstance(schema, type) else schema
    same = _BUILT.setdefault(frame.name, [])
    for known, built in same:
        if known == frame:
            return built
    described = pandera_schema_to_dagster_type(schema)  # name, description and the Columns table
    built = dg.DagsterType(type_check_fn=_type_check(frame), name=described.display_name,
                           description=described.description, metadata=described.metadata,
                           typing_type=pd.DataFrame)
    same.append((frame, built))
    return built


def proven_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """`schema` without the element-wise steps a vectorised test just proved to pass on `frame`.

    For a `str` column, pandera passes its dtype check iff every value is a `str` or null. That
    holds by construction for a pandas string dtype; for an object column, `infer_dtype` says
    "string" only if every value it does not skip is a `str`, and it skips only None/NaN/NA, which
    pandera counts as null too. With skipna=False, "string" also proves there is no null at all.
    Coercing schemas are left whole: there the check runs on the coerced values, not on `frame`.
    The `unique` key is left out for the very frame the validator enforced it on (`keys_enforced`).
    """
    if schema.coerce or not frame.columns.is_unique:
        return schema
    if schema.unique and _keys_enforced(frame):
        schema = copy.copy(schema)  # shallow: only `unique` changes
        schema.unique = None
    updates: dict[str, dict] = {}
    for name, column in schema.columns.items():
        if column.coerce or column.regex or name not in frame.columns or not isinstance(column.dtype, NpString):
            continue
        values = frame[name]
        if isinstance(values.dtype, pd.StringDtype):
            updates[name] = {"dtype": None}
        elif values.dtype == object:
            if pd.api.types.infer_dtype(values, skipna=False) == "string":  # every value a str: no null either
                updates[name] = {"dtype": None, "nullable": True}
            elif pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
                updates[name] = {"dtype": None}
    return schema.update_columns(updates) if updates else schema


def keys_enforced(frame: pd.DataFrame) -> pd.DataFrame:
    """Record that the core validator has just enforced the schema's `unique` key on `frame` (it
    quarantines every repeat: ml_assets.core.validation), so the type check reuses that result
    instead of hashing a million keys again. For the validator's own output, right before it is
    handed to Dagster: the record names this object only (a copy or a concat is checked in full)
    and goes when the object is garbage collected."""
    key = id(frame)
    _ENFORCED[key] = weakref.ref(frame, lambda _, key=key: _ENFORCED.pop(key, None))
    return frame


def _keys_enforced(frame: pd.DataFrame) -> bool:
    ref = _ENFORCED.get(id(frame))
    return ref is not None and ref() is frame


def _changes_nothing(schema: pa.DataFrameSchema) -> bool:
    """Whether validating with this schema only reads the frame: no coercion, parsers, defaults,
    added or filtered columns, or dropped rows. (The copy validated in place is shallow, so even
    the schema pandera attaches to it stays off the output.)"""
    columns = schema.columns.values()
    return not (schema.coerce or schema.parsers or schema.add_missing_columns or schema.strict == "filter"
                or schema.drop_invalid_rows or getattr(schema.index, "coerce", False)
                or any(c.coerce or c.parsers or c.default is not None for c in columns))


def _type_check(schema: pa.DataFrameSchema):
    def check(_context, value) -> dg.TypeCheck:
        if not isinstance(value, pd.DataFrame):
            return dg.TypeCheck(success=False, description=f"Must be a pandas DataFrame, not {type(value).__name__}.")
        try:
            if _changes_nothing(schema):  # pandera's defensive deep copy (and consolidation) buys nothing
                proven_schema(schema, value).validate(value.copy(deep=False), lazy=True, inplace=True)
            else:
                proven_schema(schema, value).validate(value, lazy=True)
        except pandera.errors.SchemaErrors as err:  # the same report dagster-pandera gives
            return dg.TypeCheck(success=False, description=str(err),
                                metadata={"num_failures": len(err.failure_cases)})
        except Exception as err:  # a check that raises fails the type, as in dagster-pandera
            return dg.TypeCheck(success=False, description=f"Unexpected error during validation: {err}")
        return dg.TypeCheck(success=True)

    return check

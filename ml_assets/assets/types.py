"""Dagster types from pandera schemas, one object per schema name.

Dagster refuses two different type objects with one name in a code location, and every landed
problem has a drift report, a performance table, …: the same schema gets the same type object.
Two *different* schemas under one name get two types, and Dagster reports the clash if both end up
in one code location.
"""

from __future__ import annotations

import dagster as dg
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type

_BUILT: dict[str, list[tuple[pa.DataFrameSchema, dg.DagsterType]]] = {}


def dagster_type(schema: pa.DataFrameSchema | type[pa.DataFrameModel]) -> dg.DagsterType:
    frame = schema.to_schema() if isinstance(schema, type) else schema
    same = _BUILT.setdefault(frame.name, [])
    for known, built in same:
        if known == frame:
            return built
    built = pandera_schema_to_dagster_type(schema)
    same.append((frame, built))
    return built

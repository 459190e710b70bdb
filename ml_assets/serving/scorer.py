"""The serving code path: request records -> contract-validated frame -> features -> (score, label).

The HTTP service, the fresh-process canary (infra validation gate) and the tests all go through
`Scorer`, so what the gate measured is what the service runs.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ml_assets.core.scoring import predict, to_features
from ml_assets.mlflow.registry import LoadedModel
from ml_assets.problem.spec import ProblemSpec
from ml_assets.serving.compiled import CompiledPipeline, compile_pipeline
from ml_assets.serving.contract import (
    RecordColumns,
    batch_model,
    columns_frame,
    duplicate_keys,
    record_model,
)


class Scorer:
    def __init__(self, spec: ProblemSpec, max_records: int = 10_000):
        self.spec = spec
        self.schema = spec.input_schema
        self.record_model = record_model(self.schema, f"{spec.name.title()}Record")
        self.batch_model = batch_model(self.record_model, max_records)
        self.columns = list(self.schema.columns)
        self.read_columns = RecordColumns(self.schema)
        build = spec.data.build_features
        # Features straight from column arrays when the problem wrote them that way (`columnwise`):
        # no DataFrame per request batch. Otherwise the pandas function on a frame.
        self.feature_arrays = (lambda columns: columns) if build is None else getattr(build, "arrays", None)

    def frame(self, records: list[BaseModel]) -> pd.DataFrame:
        return columns_frame(self.read_columns(records), self.schema)

    def arrays(self, records: list[BaseModel]) -> dict[str, np.ndarray]:
        """Validated records as column arrays (`score` takes them; `frame` gives the same as a DataFrame)."""
        return self.read_columns(records)

    def duplicates(self, records: list[BaseModel]) -> list[dict]:
        return duplicate_keys(records, self.schema)

    def prepare(self, model: LoadedModel) -> LoadedModel:
        """The model with its verified numpy fast path when one applies (see `compiled`)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the edge-case probe provokes "unknown categories" warnings
            predictor = compile_pipeline(model.pipeline, model.example, list(self.spec.data.categorical_features),
                                         list(self.spec.data.numeric_features), self.spec.task)
        return replace(model, predictor=predictor)

    def score(self, model: LoadedModel, data: pd.DataFrame | dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(score, label) per row of a records frame or of `arrays(records)`."""
        predictor = model.predictor or model.pipeline
        if isinstance(data, dict):
            if self.feature_arrays is not None and isinstance(predictor, CompiledPipeline):
                return predict(predictor, self.feature_arrays(data), self.spec)  # numpy from end to end
            data = columns_frame(data, self.schema)
        return predict(predictor, to_features(data, self.spec), self.spec)


def canary_records(training_set: pd.DataFrame, spec: ProblemSpec, rows: int = 200) -> list[dict]:
    """Held-out rows in the wire format a client sends (the input contract's columns and types)."""
    test = training_set[training_set["split"] == "test"] if "split" in training_set else training_set
    sample = test.head(rows)
    out = pd.DataFrame(index=sample.index)
    for name, column in spec.input_schema.columns.items():
        dtype, values = str(column.dtype), sample[name]
        if dtype.startswith("datetime"):
            out[name] = pd.to_datetime(values).dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif dtype.startswith(("int", "uint")):
            out[name] = values.astype("int64")
        elif dtype.startswith("float"):
            out[name] = values.astype(float)
        else:
            out[name] = values.astype(str)
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in out.astype(object).to_dict("records")]

"""Feature functions written on column arrays, usable wherever the platform expects a pandas one.

`DataSection.build_features` takes and returns a DataFrame (training, batch scoring, monitoring).
Written as `columnwise(fn)`, with `fn` mapping `{column: numpy array}` to `{column: numpy array}`,
it is still exactly that pandas function (the frame's columns go in as `Series.to_numpy()`, the
result comes back as a frame on the same index), and the scoring service can also call `fn`
directly on the arrays it builds from a request: no DataFrame per request batch, whose
construction alone costs more than the model (see BENCHMARKS.md, serving). One function, so
training and serving cannot compute features differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

Arrays = Mapping[str, np.ndarray]


class ColumnwiseFeatures:
    """A pandas feature function built from a function of column arrays (`arrays`)."""

    def __init__(self, arrays: Callable[[Arrays], Arrays]):
        self.arrays = arrays
        self.__name__ = getattr(arrays, "__name__", "features")
        self.__doc__ = arrays.__doc__

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = {str(name): _array(frame[name]) for name in frame.columns}
        # the arrays are the function's own results: the frame takes them without another copy
        return pd.DataFrame(dict(self.arrays(columns)), index=frame.index, copy=False)

    def __repr__(self) -> str:
        return f"columnwise({self.__name__})"


def columnwise(arrays: Callable[[Arrays], Arrays]) -> ColumnwiseFeatures:
    """`arrays` (column name -> numpy array, one entry per input column; categorical columns as
    object arrays of values with NaN for missing) as a `build_features` function."""
    return ColumnwiseFeatures(arrays)


def _array(values: pd.Series) -> np.ndarray:
    """A column as numpy; a categorical converts its few categories once and indexes them by code
    (`to_numpy()` would build every value separately), missing as NaN."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = np.append(values.cat.categories.to_numpy(dtype=object), np.nan)
        return names[values.cat.codes.to_numpy()]
    return values.to_numpy()

"""The example code location: the problems listed in defs/problems/defs.yaml."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def example_definitions() -> dg.Definitions:
    """The same Definitions as a plain object, for tests and scripts."""
    return defs()

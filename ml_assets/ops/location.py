"""The code location as the operator's tools see it: its Definitions, its problems and its instance.

The definitions module is found the way the `dagster` CLI finds it: `-m/--module`, else
$ML_ASSETS_DEFINITIONS_MODULE, else `[tool.dagster] module_name` of ./pyproject.toml.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import dagster as dg

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from ml_assets import settings
from ml_assets.problem.loading import load_problem
from ml_assets.problem.spec import ProblemSpec

PROBLEMS_METADATA = "ml_assets/problems"  # Definitions metadata: the location's problems by reference


def find_definitions_module(module: str | None = None) -> str | None:
    if module or os.environ.get("ML_ASSETS_DEFINITIONS_MODULE"):
        return module or os.environ["ML_ASSETS_DEFINITIONS_MODULE"]
    pyproject = Path.cwd() / "pyproject.toml"
    return tomllib.loads(pyproject.read_text()).get("tool", {}).get("dagster", {}).get("module_name") \
        if pyproject.exists() else None


def definitions_module(module: str | None = None) -> str:
    name = find_definitions_module(module)
    if not name:
        raise SystemExit("no code location: pass -m/--module package.definitions, set ML_ASSETS_DEFINITIONS_MODULE, "
                         "or run from a project whose pyproject.toml has [tool.dagster] module_name")
    return name


def load_location(module: str | None = None) -> dg.Definitions:
    """The module's `defs`: a Definitions object, or the function `@dg.definitions` made of it."""
    defs = importlib.import_module(definitions_module(module)).defs
    return defs if isinstance(defs, dg.Definitions) else defs()


def problems_metadata(problems: tuple[ProblemSpec, ...]) -> dict:
    return {PROBLEMS_METADATA: json.dumps([{"ref": p.ref, "overrides": p.overrides} for p in problems])}


def location_problems(defs: dg.Definitions) -> tuple[ProblemSpec, ...]:
    value = (defs.metadata or {}).get(PROBLEMS_METADATA)
    text = getattr(value, "value", value) or "[]"
    return tuple(load_problem(p["ref"], p["overrides"]) for p in json.loads(text))


def ensure_dagster_home() -> str:
    """The project's Dagster home (unless DAGSTER_HOME says otherwise), with its dagster.yaml."""
    if "DAGSTER_HOME" not in os.environ:
        os.environ["DAGSTER_HOME"] = str(settings.project_home() / ".dagster_home")
        _remember_dagster_home(os.environ["DAGSTER_HOME"])
    home = os.environ["DAGSTER_HOME"]
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    template = settings.project_home() / "deploy" / "dagster.yaml"
    if not os.path.exists(config) and template.exists():
        shutil.copyfile(template, config)
    return home


def _remember_dagster_home(home: str) -> None:
    """Record the home in the project's `.env`, which the `dagster` CLI loads from its working
    directory: `dagster asset materialize …` then finds the demo's instance with nothing exported."""
    env = settings.project_home() / ".env"
    lines = env.read_text().splitlines() if env.exists() else []
    if not any(line.strip().startswith("DAGSTER_HOME=") for line in lines):
        env.write_text("\n".join([*lines, f"DAGSTER_HOME={home}"]) + "\n")

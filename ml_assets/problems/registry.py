"""Every problem the platform serves: each module of ml_assets.problems that defines PROBLEMS.

Adding a problem is adding a module; no platform code changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from ml_assets.problems.spec import ProblemSpec


def discover() -> tuple[ProblemSpec, ...]:
    import ml_assets.problems as package

    found: dict[str, ProblemSpec] = {}
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        for problem in getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "PROBLEMS", ()):
            if problem.name in found:
                raise ValueError(f"two problems are named {problem.name!r}")
            found[problem.name] = problem
    return tuple(found.values())


def get_problem(name: str) -> ProblemSpec:
    problems = {p.name: p for p in discover()}
    if name not in problems:
        raise KeyError(f"unknown problem {name!r}; known: {', '.join(sorted(problems))}")
    return problems[name]

"""Problems live in the user's own code and are found by reference, "package.module:ATTRIBUTE".

The code location loads them through the Component (or `load_problem` in Python); every process
outside it (the gate's canary, the scoring service, the CLI) imports the same reference, which
training records on each model version with the spec's overrides. Nothing scans a package.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from ml_assets.problem.sections import SpecError
from ml_assets.problem.spec import ProblemSpec

REF_TAG, OVERRIDES_TAG = "ml_assets.problem_ref", "ml_assets.problem_overrides"


def load_problem(ref: str, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> ProblemSpec:
    """Import `package.module:ATTRIBUTE` (a ProblemSpec, or a function returning one) and apply overrides."""
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise SpecError(f"problem reference {ref!r} is not 'package.module:ATTRIBUTE', e.g. 'my_pkg.problems:LOANS'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise SpecError(f"problem reference {ref!r}: cannot import {module_name!r} ({err}); install the package "
                        "that defines it in this environment, or add its folder to PYTHONPATH") from err
    if not hasattr(module, attribute):
        defined = sorted(n for n, v in vars(module).items() if isinstance(v, ProblemSpec) or
                         (callable(v) and getattr(v, "__module__", None) == module_name and not n.startswith("_")))
        raise SpecError(f"problem reference {ref!r}: {module_name} defines no {attribute!r}; "
                        f"it defines {', '.join(defined) or 'no ProblemSpec'}")
    found = getattr(module, attribute)
    spec = found() if callable(found) and not isinstance(found, ProblemSpec) else found
    if not isinstance(spec, ProblemSpec):
        raise SpecError(f"problem reference {ref!r}: {attribute!r} in {module_name} is "
                        f"{type(found).__name__}, not a ProblemSpec (or a function returning one)")
    spec = spec.with_overrides(overrides) if overrides else spec
    return spec if spec.ref == ref else _with_ref(spec, ref)


def _with_ref(spec: ProblemSpec, ref: str) -> ProblemSpec:
    import dataclasses

    return dataclasses.replace(spec, ref=ref)


def require_ref(spec: ProblemSpec) -> str:
    if not spec.ref:
        raise SpecError(f"problem {spec.name!r} has no reference: processes outside the code location (the gate's "
                        "canary, the scoring service, the CLI) import it by one. Load it with "
                        "ml_assets.problem.load_problem('package.module:ATTRIBUTE') or name it in the "
                        "Component's `spec:` attribute.")
    return spec.ref


def ref_tags(spec: ProblemSpec) -> dict[str, str]:
    """What a model version records so any process can rebuild its problem."""
    return {REF_TAG: require_ref(spec), OVERRIDES_TAG: json.dumps(spec.overrides, sort_keys=True)}


def problem_from_tags(tags: Mapping[str, str], name: str) -> ProblemSpec:
    if REF_TAG not in tags:
        raise SpecError(f"the model version of problem {name!r} records no {REF_TAG} tag (registered by an older "
                        "ml_assets); retrain it, or pass the reference explicitly (--problem-ref package.module:ATTR)")
    return load_problem(tags[REF_TAG], json.loads(tags.get(OVERRIDES_TAG) or "{}"))

"""How a step reaches the code it runs, and what it returns.

A step imports its target (``module:function``) when it runs, through :func:`resolve`: the
DAG file stays cheap to parse, and a target that is not part of this installation fails the
task with :class:`StepUnavailable` naming the module, never a skip (issue 17).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tokenbook.orchestration.errors import StepUnavailable

REPORT_FIELDS = (
    "load_id",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
)


def load_module(module_name: str, target: str | None = None) -> ModuleType:
    """Import ``module_name``; StepUnavailable only when that very module is absent."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A missing dependency *inside* the module is a real error, not an absent step.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise StepUnavailable(
                f"{module_name} is not installed; {target or module_name} cannot run"
            ) from exc
        raise


def resolve(target: str) -> Callable[..., Any]:
    """Import ``module:function`` lazily; StepUnavailable only when that very name is absent."""
    module_name, _, attr = target.partition(":")
    func = getattr(load_module(module_name, target), attr, None)
    if func is None:
        raise StepUnavailable(f"{module_name} has no {attr}(); {target} cannot run")
    return func


def summary(report: Any, base: dict[str, Any]) -> dict[str, Any]:
    """A small JSON-able summary of a step's report (for XCom and the task log)."""
    out = dict(base)
    if isinstance(report, Mapping):
        items = report.items()
    else:
        items = ((name, getattr(report, name, None)) for name in REPORT_FIELDS)
    for key, value in items:
        if isinstance(value, str | int | float | bool):
            out[key] = value
    return out

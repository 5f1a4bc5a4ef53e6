"""Step ``dbt_build`` (and the models after the forecasts): dbt for the run's date.

The DAG renders one task per model from the manifest (astronomer-cosmos) when there is one;
:func:`build_models` is one ``dbt build`` for the models that read forecasts, for a selection,
or for everything when no manifest exists.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from core.settings import Settings
from tokenbook.dbt import DBT_PROJECT_DIR, log_file, run_dbt, stage_lines
from tokenbook.orchestration.errors import OrchestrationError
from tokenbook.orchestration.inputs import ENV_DBT_MANIFEST, as_run_date

log = logging.getLogger(__name__)

DEFAULT_DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"

# Models that read the forecast tables: built after the forecast step (after_forecast_models).
AFTER_FORECAST_SELECTOR = "tag:after_forecast"


def dbt_manifest_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the DAG reads the dbt manifest: ``TOKENBOOK_DBT_MANIFEST`` or
    ``dbt_project/target/manifest.json`` (written by :func:`write_dbt_manifest`)."""
    env = os.environ if environ is None else environ
    return Path(env[ENV_DBT_MANIFEST]) if env.get(ENV_DBT_MANIFEST) else DEFAULT_DBT_MANIFEST


def write_dbt_manifest(settings: Settings, target_dir: str | Path | None = None) -> Path:
    """Run ``dbt parse`` (no warehouse connection) and return the manifest path.

    Default: ``dbt_project/target/manifest.json``, where the DAG looks for it; tests pass a
    temporary ``target_dir`` and point ``TOKENBOOK_DBT_MANIFEST`` at the result.
    """
    base = Path(target_dir) if target_dir is not None else DBT_PROJECT_DIR
    run_dbt(["parse"], settings, target_path=base)
    manifest = base / "target" / "manifest.json"
    if not manifest.is_file():
        raise OrchestrationError(f"dbt parse finished but wrote no manifest at {manifest}")
    return manifest


def dbt_run_vars(run_date: date) -> dict[str, str]:
    """dbt ``--vars`` of a nightly run: the date the models build for."""
    return {"run_date": as_run_date(run_date).isoformat()}


def build_models(
    run_date: date,
    settings: Settings,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
) -> dict[str, Any]:
    """``dbt build`` of the whole project (or ``select``, minus ``exclude``) for the date, in
    one invocation. The DAG uses it for the models that read forecasts, and for everything
    when no manifest exists to render one task per model.
    """
    args = ["build", "--vars", json.dumps(dbt_run_vars(run_date))]
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    result = run_dbt(args, settings)
    results = getattr(getattr(result, "result", None), "results", None) or []
    stages = stage_lines(result)
    for line in stages:  # the task log: one line per dbt stage, dbt's own log in its file
        log.info("dbt %s", line)
    log.info("dbt log: %s", log_file(settings.dbt_target_path))
    return {"date": as_run_date(run_date).isoformat(), "nodes": len(results), "stages": stages}

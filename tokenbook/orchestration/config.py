"""Step ``load_config``: the organisation's configuration, validated and loaded first."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.settings import Settings
from tokenbook.dbt import ensure_raw_tables
from tokenbook.orchestration.inputs import as_run_date
from tokenbook.orgconfig.load import load_config


def load_org_config(run_date: date, settings: Settings) -> dict[str, Any]:
    """Validate the organisation's configuration folder and load it into raw.config_* before
    the models build, and create every raw table nothing was loaded into yet (empty), as
    ``run_dbt`` does before each dbt command: the DAG's per-model cosmos tasks run dbt
    themselves. Raises ConfigInvalid (file, line, column, what to write) on an invalid
    folder, so the DAG stops before dbt with the message `tokenbook config check` prints."""
    cfg = load_config(settings)
    ensure_raw_tables(settings)
    return {"date": as_run_date(run_date).isoformat(),
            "config_dir": str(cfg.folder) if cfg.folder is not None else None,
            "files": cfg.status()}

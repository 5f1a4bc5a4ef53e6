"""Run dbt programmatically against the configured warehouse.

The dbt project's profiles read the environment; ``dbt_env`` builds it from the warehouse
URL so the same models run on DuckDB and BigQuery.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tokenbook.settings import Settings, project_root
from tokenbook.warehouse import Warehouse, parse_warehouse

DBT_PROJECT_DIR = project_root() / "dbt_project"


class DbtError(RuntimeError):
    """dbt finished with errors; the message lists the failing nodes."""


def dbt_env(settings: Settings) -> dict[str, str]:
    wh: Warehouse = parse_warehouse(settings.warehouse)
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if wh.kind == "duckdb":
        assert wh.path is not None
        env["TOKENBOOK_DBT_TARGET"] = "duckdb"
        env["TOKENBOOK_DUCKDB_PATH"] = str(wh.path.resolve())
    else:
        env["TOKENBOOK_DBT_TARGET"] = "bigquery"
        env["TOKENBOOK_BQ_PROJECT"] = str(wh.project)
        env["TOKENBOOK_BQ_PREFIX"] = str(wh.prefix)
        env["TOKENBOOK_BQ_LOCATION"] = settings.bq_location
        if settings.bq_keyfile:
            env["TOKENBOOK_BQ_METHOD"] = "service-account"
            env["TOKENBOOK_BQ_KEYFILE"] = settings.bq_keyfile
    return env


@contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dbt(args: Sequence[str], settings: Settings, target_path: str | Path | None = None):
    """Invoke dbt in-process (dbtRunner) and raise DbtError naming what failed.

    Returns the ``dbtRunnerResult``. ``target_path`` keeps target/ and logs/ out of the
    source tree (tests use a temporary folder).
    """
    from dbt.cli.main import dbtRunner

    target = target_path or settings.dbt_target_path
    cli_args = list(args) + [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    if target:
        cli_args += ["--target-path", str(Path(target) / "target"), "--log-path", str(Path(target) / "logs")]
    with _patched_environ(dbt_env(settings)):
        result = dbtRunner().invoke(cli_args)
    if not result.success:
        failures: list[str] = []
        res = result.result
        for r in getattr(res, "results", None) or []:
            status = str(getattr(r, "status", ""))
            if status.lower() in {"error", "fail", "runtimeerr", "runtime error"}:
                failures.append(f"{r.node.unique_id}: {r.message}")
        detail = "; ".join(failures) if failures else str(result.exception or "see dbt log above")
        raise DbtError(f"dbt {' '.join(args)} failed: {detail}")
    return result

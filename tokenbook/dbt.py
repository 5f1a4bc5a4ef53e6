"""Run dbt programmatically against the configured warehouse.

The dbt project's profiles read the environment; ``dbt_env`` builds it from the warehouse
URL so the same models run on DuckDB and BigQuery.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from core.settings import Settings, project_root
from core.warehouse import Warehouse, connect_duckdb

DBT_PROJECT_DIR = project_root() / "dbt_project"


# dbt commands that read the organisation's configuration tables: loaded before each.
CONFIG_COMMANDS = {"build", "run", "test", "seed"}


class DbtError(RuntimeError):
    """dbt finished with errors; the message lists the failing nodes. ``tests_only``: every
    failure is a data test that found rows (status fail), no build or runtime error."""

    def __init__(self, message: str, tests_only: bool = False) -> None:
        super().__init__(message)
        self.tests_only = tests_only


def dbt_env(settings: Settings) -> dict[str, str]:
    wh: Warehouse = Warehouse.from_settings(settings)
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

    if args and args[0] in CONFIG_COMMANDS:
        # The organisation's configuration -> raw.config_* tables the models read
        # (raises ConfigInvalid before dbt starts).
        from tokenbook.orgconfig.load import load_config

        load_config(settings)
    target = target_path or settings.dbt_target_path
    cli_args = _with_setting_vars(list(args), settings) + [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    if target:
        cli_args += [
            "--target-path",
            str(Path(target) / "target"),
            "--log-path",
            str(Path(target) / "logs"),
        ]
    elif "--log-path" not in args:
        cli_args += ["--log-path", str(log_folder())]
    if not {"--quiet", "-q", "--log-level"} & set(args):
        # dbt's own log goes to its file (logs/dbt.log); the terminal gets stage_lines()
        cli_args += ["--log-level", "none"]
        if "--log-level-file" not in args:  # dbt would follow --log-level and write nothing
            cli_args += ["--log-level-file", "debug"]
    with _patched_environ(dbt_env(settings)):
        result = dbtRunner().invoke(cli_args)
    if not result.success:
        statuses = [str(getattr(r, "status", "")).lower().split(".")[-1]
                    for r in getattr(getattr(result, "result", None), "results", None) or []]
        bad = [s for s in statuses if s in _FAILED]
        raise DbtError(_failure_message(args, result, target),
                       tests_only=bool(bad) and set(bad) == {"fail"})
    return result


def _with_setting_vars(args: list[str], settings: Settings) -> list[str]:
    """Settings the models read as dbt vars (TOKENBOOK_VARIANCE_THRESHOLD -> variance_threshold),
    when set away from the default, merged into any ``--vars`` the caller gave (the caller's values win)."""
    import json

    import yaml

    # Only a threshold set by flag/env overrides the seed reconciliation_settings.csv.
    setting_vars = {}
    if settings.variance_threshold != Settings().variance_threshold:
        setting_vars["variance_threshold"] = settings.variance_threshold
    if settings.reporting_currency.upper() != Settings().reporting_currency:
        setting_vars["reporting_currency"] = settings.reporting_currency.upper()
    if not setting_vars:
        return args
    if "--vars" in args:
        i = args.index("--vars")
        given = yaml.safe_load(args[i + 1]) or {}
        return args[:i] + ["--vars", json.dumps({**setting_vars, **given})] + args[i + 2 :]
    return args + ["--vars", json.dumps(setting_vars)]


def log_folder() -> Path:
    """Where dbt writes dbt.log when no target path is set: ``logs/`` under the run's output
    folder (``$TOKENBOOK_OUT_DIR``, default ``out``), beside the report and exports."""
    return Path(os.environ.get("TOKENBOOK_OUT_DIR") or "out") / "logs"


def log_file(target_path: str | Path | None = None) -> Path:
    base = Path(target_path) / "logs" if target_path else log_folder()
    return (base / "dbt.log").resolve()


# resource type -> (label, verb for success); statuses are counted under readable words
_STAGES = (
    ("seed", "seeds", "loaded"),
    ("model", "models", "built"),
    ("snapshot", "snapshots", "taken"),
    ("unit_test", "unit tests", "passed"),
    ("test", "data tests", "passed"),
    ("saved_query", "saved queries", "done"),
    ("operation", "hooks", "done"),
)
_WORDS = {"success": None, "pass": None, "no-op": None, "noop": None, "fail": "failed", "error": "errored", "warn": "warned",
          "skipped": "skipped", "runtime error": "errored", "runtimeerr": "errored"}


def stage_lines(result) -> list[str]:
    """One line per dbt stage for a person: 'models: 51 built', 'data tests: 325 passed,
    2 failed (assert_x, not_null_y_id)' — names of what failed or warned, not dbt's log."""
    by_type: dict[str, list] = {}
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        kind = str(getattr(r.node, "resource_type", "")).lower().split(".")[-1]
        by_type.setdefault(kind, []).append(r)
    lines = []
    known = {k for k, _, _ in _STAGES}
    stages = list(_STAGES) + [(k, k + "s", "done") for k in sorted(by_type) if k not in known]
    for kind, label, verb in stages:
        nodes = by_type.get(kind)
        if not nodes:
            continue
        ok, other = 0, {}
        for r in nodes:
            status = str(getattr(r, "status", "")).lower().split(".")[-1]
            word = _WORDS.get(status, status)
            if word is None:
                ok += 1
            else:
                other.setdefault(word, []).append(getattr(r.node, "name", "?"))
        parts = [f"{ok} {verb}"]
        for word, names in sorted(other.items()):
            shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
            parts.append(f"{len(names)} {word}" + ("" if word == "skipped" else f" ({shown})"))
        lines.append(f"{label}: " + ", ".join(parts))
    return lines


_FAILED = {"error", "fail", "runtime error", "runtimeerr"}


def failed_nodes(result) -> list[str]:
    """``unique_id: message`` of every node that errored or failed in a dbt result."""
    failures: list[str] = []
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        status = str(getattr(r, "status", "")).lower().split(".")[-1]
        if status in _FAILED:
            message = " ".join(str(r.message or status).split())
            failures.append(f"{r.node.unique_id}: {message[:500]}")
    return failures


def _failure_message(args: Sequence[str], result, target: str | Path | None = None) -> str:
    failures = failed_nodes(result)
    head = f"dbt {' '.join(args)} failed"
    if failures:
        return (f"{head} ({len(failures)} node(s)):\n  " + "\n  ".join(failures)
                + f"\ndbt log: {log_file(target)}")
    return f"{head}: {result.exception or 'see the dbt log'} (dbt log: {log_file(target)})"


def ensure_raw_tables(settings: Settings) -> None:
    """Create every raw table the dbt sources read (empty) on a DuckDB warehouse that lacks
    them, so ``dbt build`` runs before the first load of each source (a company with no
    billing exports yet, no evals, ...). BigQuery datasets are created by the loads."""
    from ingestion.billing.schema import BILLING_LINES_COLUMNS
    from ingestion.evals import EVALS_COLUMNS
    from ingestion.fx import FX_RATES_COLUMNS
    from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
    from ingestion.raw import schema

    wh = Warehouse.from_settings(settings)
    if wh.kind != "duckdb":
        return
    con = connect_duckdb(wh)
    try:
        for name, columns in (
            ("gateway_calls", GATEWAY_CALLS_COLUMNS),
            ("quarantine", schema.QUARANTINE_COLUMNS),
            ("pii_redactions", schema.PII_REDACTIONS_COLUMNS),
            ("load_audit", schema.LOAD_AUDIT_COLUMNS),
            ("validation_results", schema.VALIDATION_RESULTS_COLUMNS),
            ("billing_lines", BILLING_LINES_COLUMNS),
            ("evals", EVALS_COLUMNS),
            ("fx_rates", FX_RATES_COLUMNS),
        ):
            con.execute(schema.duckdb_ddl(wh.table("raw", name), columns))
    finally:
        con.close()


def build(
    settings: Settings,
    select: Sequence[str] | None = None,
    full_refresh: bool = False,
    target_path: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> str:
    """``dbt build`` (seeds, models, unit and data tests) and a one-line summary.

    Raises DbtError listing the failed nodes."""
    ensure_raw_tables(settings)
    args = ["build"]
    if select:
        args += ["--select", *select]
    if full_refresh:
        args.append("--full-refresh")
    args += list(extra_args)
    result = run_dbt(args, settings, target_path=target_path)
    lines = stage_lines(result) or ["nothing selected"]
    return "\n".join(["dbt build finished:", *(f"  {line}" for line in lines),
                      f"dbt log: {log_file(target_path or settings.dbt_target_path)}"])

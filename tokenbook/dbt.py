"""Run dbt programmatically against the configured warehouse.

The dbt project's profiles read the environment; ``dbt_env`` builds it from the warehouse
URL so the same models run on DuckDB and BigQuery.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from core.settings import Settings, project_root
from core.warehouse import Warehouse
from ingestion.billing.schema import BILLING_LINES_COLUMNS
from ingestion.evals import EVALS_COLUMNS
from ingestion.fx import FX_RATES_COLUMNS
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
from ingestion.raw import schema as raw_schema
from ingestion.raw.schema import duckdb_ddl
from tokenbook.orgconfig.load import load_config
from tokenbook.pricing.versions import version_columns

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
    if wh.is_bigquery:
        env["TOKENBOOK_DBT_TARGET"] = "bigquery"
        env["TOKENBOOK_BQ_PROJECT"] = str(wh.project)
        env["TOKENBOOK_BQ_PREFIX"] = str(wh.prefix)
        env["TOKENBOOK_BQ_LOCATION"] = wh.bq_location
        if wh.bq_keyfile:
            env["TOKENBOOK_BQ_METHOD"] = "service-account"
            env["TOKENBOOK_BQ_KEYFILE"] = wh.bq_keyfile
    else:
        assert wh.path is not None
        env["TOKENBOOK_DBT_TARGET"] = "duckdb"
        env["TOKENBOOK_DUCKDB_PATH"] = str(wh.path.resolve())
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
    from dbt.cli.main import dbtRunner  # heavy (seconds): imported when dbt runs

    if args and args[0] in CONFIG_COMMANDS:
        # The organisation's configuration -> raw.config_* tables the models read
        # (raises ConfigInvalid before dbt starts), and every raw table, empty where nothing
        # was loaded yet: no model ever meets a missing raw table.
        load_config(settings)
        ensure_raw_tables(settings)
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
    if _interrupted(getattr(result, "exception", None)):
        # dbtRunner returns Ctrl-C as a failed result: it is an interrupt (exit 130), not a
        # failed build with an empty reason
        raise KeyboardInterrupt from result.exception
    if not result.success:
        statuses = [str(getattr(r, "status", "")).lower().split(".")[-1]
                    for r in getattr(getattr(result, "result", None), "results", None) or []]
        bad = [s for s in statuses if s in _FAILED]
        raise DbtError(_failure_message(args, result, target),
                       tests_only=bool(bad) and set(bad) == {"fail"})
    return result


def _interrupted(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__ or getattr(exc, "exception", None), seen + 1
    return False


def _with_setting_vars(args: list[str], settings: Settings) -> list[str]:
    """Settings the models read as dbt vars (TOKENBOOK_VARIANCE_THRESHOLD -> variance_threshold),
    when set away from the default, merged into any ``--vars`` the caller gave (the caller's values win)."""
    import yaml  # third-party, needed only with --vars: not paid at CLI start

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


# A raw table: its columns as its writer loads them (name, DuckDB type, BigQuery type) and, on
# BigQuery, how that writer partitions and clusters it (None: not partitioned / clustered).
RawTable = tuple[tuple[tuple[str, str, str], ...], str | None, str | None]


def raw_tables() -> dict[str, RawTable]:
    """Every raw table a dbt source reads, from the schemas of the code that writes it: the
    gateway sink (ingestion/gateway/schema.py and ingestion/raw/schema.py, ingestion-time partitions as its load jobs
    create them), billing (partitioned by load_date), evals, `tokenbook fx load`,
    `tokenbook prices load`."""
    by_load = "_PARTITIONDATE"
    return {
        "gateway_calls": (GATEWAY_CALLS_COLUMNS, by_load, "feature"),
        "quarantine": (raw_schema.QUARANTINE_COLUMNS, by_load, None),
        "pii_redactions": (raw_schema.PII_REDACTIONS_COLUMNS, by_load, None),
        "load_audit": (raw_schema.LOAD_AUDIT_COLUMNS, by_load, None),
        "validation_results": (raw_schema.VALIDATION_RESULTS_COLUMNS, by_load, None),
        "billing_lines": (BILLING_LINES_COLUMNS, "load_date", "vendor, provider"),
        "evals": (EVALS_COLUMNS, None, None),
        "fx_rates": (FX_RATES_COLUMNS, None, None),
        "price_book_versions": (version_columns(), None, None),
    }


def raw_tables_sql(wh: Warehouse, location: str = "US") -> list[str]:
    """The statements that create the raw layer and every raw table (empty) where missing:
    DuckDB DDL, or BigQuery DDL (the dataset in ``location``, then each table partitioned and
    clustered as its writer's load would create it, so a later load job appends to it)."""
    if not wh.is_bigquery:
        return [f"create schema if not exists {wh.schema('raw')}"] + [
            duckdb_ddl(wh.table("raw", name), columns)
            for name, (columns, _, _) in raw_tables().items()
        ]
    dataset = f"`{wh.project}`.`{wh.schema('raw')}`"
    out = [f"CREATE SCHEMA IF NOT EXISTS {dataset} OPTIONS (location = '{location}')"]
    for name, (columns, partition, cluster) in raw_tables().items():
        body = ", ".join(f"{c} {bq}" for c, _, bq in columns)
        ddl = f"CREATE TABLE IF NOT EXISTS {wh.table('raw', name)} ({body})"
        ddl += f" PARTITION BY {partition}" if partition else ""
        ddl += f" CLUSTER BY {cluster}" if cluster else ""
        out.append(ddl)
    return out


def ensure_raw_tables(settings: Settings, client=None) -> None:
    """Create the raw layer and every raw table the dbt sources read (empty) where missing,
    before dbt runs: the one way this project handles a raw table nothing was loaded into yet
    (a company with no billing exports, no evals, no loaded price map, ...), so no dbt model
    branches on a table's existence. Every path that runs dbt calls it (``tokenbook run``,
    ``tokenbook transform``, the nightly DAG's dbt task: through ``run_dbt``; the
    DAG's per-model cosmos tasks: through its load_config task). ``client``: a BigQuery client (tests);
    by default one is built from the settings (key file, location)."""
    wh = Warehouse.from_settings(settings)
    statements = raw_tables_sql(wh, settings.bq_location)
    if not wh.is_bigquery:
        con = wh.connect()
        try:
            for sql in statements:
                con.execute(sql)
        finally:
            con.close()
        return
    client = client or wh.bigquery_client()
    client.query(";\n".join(statements) + ";", location=settings.bq_location).result()


def build(
    settings: Settings,
    select: Sequence[str] | None = None,
    full_refresh: bool = False,
    target_path: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> str:
    """``dbt build`` (seeds, models, unit and data tests) and a one-line summary.

    Raises DbtError listing the failed nodes."""
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

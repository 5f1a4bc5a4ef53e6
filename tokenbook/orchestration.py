"""The nightly pipeline as plain functions: one per step, one date per call.

The Airflow DAG (``dags/tokenbook_nightly.py``) is wiring only: each of its tasks calls one
function here with the run's date (``data_interval_start``) and the settings. The same
functions run without Airflow (a shell, a test, ``tokenbook run``)::

    from datetime import date
    from tokenbook.orchestration import RunInputs, ingest_gateway_day
    from core.settings import load_settings

    ingest_gateway_day(date(2026, 11, 27), load_settings(), RunInputs.from_env())

Every step is idempotent for its date: it reads that date's inputs and overwrites that date's
partitions, so a retry or a backfill of the same date gives the same tables. No step reads the
clock to decide what to do.

Inputs come from environment variables (names below), which Airflow Variables of the same
name in lower case may override at run time (``tokenbook_gateway_path`` ...). The warehouse
and its credentials are tokenbook settings (``TOKENBOOK_WAREHOUSE``, ``TOKENBOOK_BQ_KEYFILE``):
environment only, never in code.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.settings import Settings, project_root
from core.warehouse import Warehouse, connect_duckdb
from ingestion.raw.guard import LoadRefused
from tokenbook.orgconfig import ConfigInvalid

log = logging.getLogger(__name__)

# Environment variables (Airflow Variables named in lower case override them per run).
ENV_GATEWAY_PATH = "TOKENBOOK_GATEWAY_PATH"  # folder of gateway-YYYY-MM-DD.jsonl.gz, or gs://...
ENV_BILLING_PATH = "TOKENBOOK_BILLING_PATH"  # folder of vendor billing exports (optional)
ENV_OUT_DIR = "TOKENBOOK_OUT_DIR"  # where the report and the finance exports are written
ENV_DBT_MANIFEST = "TOKENBOOK_DBT_MANIFEST"  # manifest.json the DAG renders dbt tasks from
ENV_DBT_SELECT = "TOKENBOOK_DBT_SELECT"  # optional dbt selectors (space separated) for the DAG
ENV_PUBLISH = "TOKENBOOK_PUBLISH"  # outputs publish_outputs writes: chargeback,focus,report

INPUT_VARIABLES: dict[str, str] = {
    "gateway_path": ENV_GATEWAY_PATH,
    "billing_path": ENV_BILLING_PATH,
    "out_dir": ENV_OUT_DIR,
}

DEFAULT_OUT_DIR = "out"
DEFAULT_DBT_MANIFEST = project_root() / "dbt_project" / "target" / "manifest.json"

# Airflow pool that every BigQuery-bound task uses (created by scripts/airflow_standalone.sh).
BIGQUERY_POOL = "bigquery"

# Gateway files of one day, as the demo (and most log shippers) lay them out.
GATEWAY_SUFFIXES = (".jsonl.gz", ".jsonl", ".ndjson.gz", ".ndjson", ".json.gz", ".json", ".parquet")

# The failure table an operator reads (see record_failure).
FAILURES_TABLE = "pipeline_failures"
FAILURE_TEXT_LIMIT = 2000
FAILURE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dag_id", "VARCHAR", "STRING"),
    ("task_id", "VARCHAR", "STRING"),
    ("run_id", "VARCHAR", "STRING"),
    ("logical_date", "TIMESTAMP", "TIMESTAMP"),  # Airflow's logical date of the run (UTC)
    ("run_date", "DATE", "DATE"),  # the day the run processes (data_interval_start)
    ("try_number", "INTEGER", "INT64"),
    ("exception_type", "VARCHAR", "STRING"),
    ("exception_text", "VARCHAR", "STRING"),  # redacted and truncated
    ("failed_at", "TIMESTAMP", "TIMESTAMP"),  # audit only, never used in logic
)


class OrchestrationError(RuntimeError):
    """A step cannot run for its date; the message says what is missing and what to do."""


class MissingInput(OrchestrationError):
    """The date's input files are not where the settings say."""


class StepUnavailable(OrchestrationError):
    """The code a step calls is not part of this installation (a module or function absent).

    The DAG fails such a task with this message (a broken installation is never skipped).
    """


class QualityGateFailed(OrchestrationError):
    """The loaded partition violated a data-quality expectation; the models must not build."""


# Failures a retry cannot fix (the same input is refused again): the DAG fails the task at once.
NOT_RETRYABLE: tuple[type[Exception], ...] = (LoadRefused, ConfigInvalid)


@dataclass(frozen=True)
class RunInputs:
    """Where a run finds its input files and writes its outputs."""

    gateway_path: str | None = None
    billing_path: str | None = None
    out_dir: str = DEFAULT_OUT_DIR

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> RunInputs:
        """Inputs from the environment; non-empty ``overrides`` (e.g. Airflow Variables) win."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name, var in INPUT_VARIABLES.items():
            if env.get(var):
                values[name] = env[var]
        unknown = set(overrides) - set(INPUT_VARIABLES)
        if unknown:
            raise TypeError(f"unknown run inputs: {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v})
        return replace(cls(), **values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_run_date(value: date | datetime | str) -> date:
    """The date a run processes: ``data_interval_start`` in UTC (or an ISO date string)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def is_refit_day(run_date: date) -> bool:
    """Forecasts are refit weekly, on the run for an ISO week's Monday."""
    return as_run_date(run_date).isoweekday() == 1


def _resolve(target: str) -> Callable[..., Any]:
    """Import ``module:function`` lazily; StepUnavailable only when that very name is absent."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # A missing dependency *inside* the module is a real error, not an absent step.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise StepUnavailable(f"{module_name} is not installed; {target} cannot run") from exc
        raise
    func = getattr(module, attr, None)
    if func is None:
        raise StepUnavailable(f"{module_name} has no {attr}(); {target} cannot run")
    return func


# --------------------------------------------------------------------------- gateway


def gateway_files_for(run_date: date, gateway_path: str) -> list[str]:
    """The gateway files of one day under ``gateway_path``.

    Layout (the demo's, and what log shippers usually write): ``gateway-YYYY-MM-DD.jsonl.gz``
    (or .jsonl / .ndjson / .json, optionally gzipped, or .parquet) directly in the folder, or
    any such file inside a ``YYYY-MM-DD/`` or ``dt=YYYY-MM-DD/`` subfolder. A ``gs://`` path is
    not listed here: the day's pattern ``<path>/gateway-YYYY-MM-DD.*`` goes to the loader.
    """
    day = run_date.isoformat()
    if gateway_path.startswith("gs://"):
        return [f"{gateway_path.rstrip('/')}/gateway-{day}.*"]
    root = Path(gateway_path)
    if not root.is_dir():
        raise MissingInput(
            f"gateway path {root} does not exist or is not a folder; set {ENV_GATEWAY_PATH} "
            f"(or the Airflow Variable {ENV_GATEWAY_PATH.lower()}) to the folder holding "
            f"gateway-{day}.jsonl.gz"
        )
    found = [root / f"gateway-{day}{suffix}" for suffix in GATEWAY_SUFFIXES]
    files = [p for p in found if p.is_file()]
    for sub in (root / day, root / f"dt={day}"):
        if sub.is_dir():
            files += sorted(
                p for p in sub.rglob("*") if p.is_file() and p.name.endswith(GATEWAY_SUFFIXES)
            )
    if not files:
        raise MissingInput(
            f"no gateway file for {day} in {root} (looked for gateway-{day}.jsonl.gz and the "
            f"folders {day}/ and dt={day}/); the export may not have landed yet, so the task "
            "fails and Airflow retries it"
        )
    return [str(p) for p in files]


def ingest_gateway_day(run_date: date, settings: Settings, inputs: RunInputs,
                       replace: bool = False) -> dict[str, Any]:
    """Load the day's gateway logs into raw.gateway_calls (partition ``run_date``).

    The ingestion pipeline overwrites the partition atomically; the data-quality suites run
    in their own step (:func:`check_data_quality`). A delivery with no valid record, or one
    that would remove more than 90% of the loaded day, is refused (``LoadRefused``, nothing
    changed) unless ``replace`` (the CLI's ``--replace``; the DAG's ``replace`` param, False
    by default).
    """
    run_date = as_run_date(run_date)
    if not inputs.gateway_path:
        raise MissingInput(
            f"no gateway path configured: set {ENV_GATEWAY_PATH} (or the Airflow Variable "
            f"{ENV_GATEWAY_PATH.lower()}) to the folder of daily gateway-YYYY-MM-DD.jsonl.gz files"
        )
    files = gateway_files_for(run_date, inputs.gateway_path)
    ingest = _resolve("ingestion.gateway.pipeline:ingest_gateway")
    log.info("ingesting %d gateway file(s) for %s: %s", len(files), run_date, files)
    report = ingest(files, settings, date=run_date, replace=replace)
    notes = list(getattr(report, "notes", []) or [])
    for note in notes:  # e.g. calls with a service tier outside the known ones: loaded, reported
        log.warning("gateway load for %s: %s", run_date, note)
    return _summary(report, {"date": run_date.isoformat(), "files": files, "notes": notes})


REPORT_FIELDS = (
    "load_id",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
)


def _summary(report: Any, base: dict[str, Any]) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- billing


def billing_files_for(run_date: date, billing_path: str) -> dict[str, tuple[str, list[str]]]:
    """The date's billing exports under ``billing_path``, per vendor: ``{vendor: (rule, files)}``.

    Layout: one folder per vendor (``openai/``, ``anthropic/``, ``gcp/``, ``aws/``, ``azure/``).
    API vendors (openai, anthropic) export daily: files whose name carries the date
    (``*YYYY-MM-DD*``) load into that date's partition (rule ``date``). File-export vendors
    (gcp, aws, azure) restate one file per month through the month: files whose name carries
    the month (``*YYYY-MM*``) replace that month's partition every night (rule ``month``).
    """
    from ingestion.billing.loader import MONTHLY_VENDORS, SUFFIXES, VENDORS

    root = Path(billing_path)
    found: dict[str, tuple[str, list[str]]] = {}
    if not root.is_dir():
        return found
    for vendor in VENDORS:
        folder = root / vendor
        if not folder.is_dir():
            continue
        monthly = vendor in MONTHLY_VENDORS
        stamp = run_date.strftime("%Y-%m") if monthly else run_date.isoformat()
        files = sorted(
            str(p)
            for p in folder.rglob(f"*{stamp}*")
            if p.is_file() and p.name.lower().endswith(SUFFIXES)
        )
        if files:
            found[vendor] = ("month" if monthly else "date", files)
    return found


def ingest_billing_day(run_date: date, settings: Settings, inputs: RunInputs,
                       replace: bool = False) -> dict[str, Any]:
    """Load the date's vendor billing exports into raw.billing_lines, one vendor at a time.
    ``replace`` confirms loads the shrink guard would refuse (see ``ingest_gateway_day``).

    No files for the date is a normal night (most vendors bill monthly): the result says
    ``skipped`` with the reason, and the DAG marks the task skipped.
    """
    run_date = as_run_date(run_date)
    day = run_date.isoformat()
    if not inputs.billing_path:
        reason = f"no billing path configured ({ENV_BILLING_PATH}); billing skipped for {day}"
        log.info(reason)
        return {"date": day, "skipped": True, "reason": reason}
    try:
        plan = billing_files_for(run_date, inputs.billing_path)
        from ingestion.billing.loader import ingest_billing
    except ModuleNotFoundError as exc:
        raise StepUnavailable(f"billing ingestion is not installed ({exc.name})") from exc
    if not plan:
        reason = f"no billing files for {day} under {inputs.billing_path}; billing skipped"
        log.info(reason)
        return {"date": day, "skipped": True, "reason": reason}
    wh = Warehouse.from_settings(settings)
    sink = None
    if wh.kind == "bigquery":
        # Parse and validate in a local DuckDB; publish with BigQuery load jobs.
        import duckdb

        from ingestion.billing.bigquery import BigQueryBillingSink

        con = duckdb.connect()
        sink = BigQueryBillingSink.from_settings(settings)
    else:
        con = connect_duckdb(wh, wait_seconds=settings.lock_wait_seconds)
    loaded: dict[str, int] = {}
    try:
        for vendor, (rule, files) in plan.items():
            log.info("ingesting %d %s billing file(s) for %s: %s", len(files), vendor, day, files)
            kwargs: dict[str, Any] = (
                {"month": run_date.replace(day=1)} if rule == "month" else {"load_date": run_date}
            )
            results = ingest_billing(
                con,
                vendor,
                files,
                window_days_before=settings.window_days_before,
                window_days_after=settings.window_days_after,
                sink=sink,
                replace=replace,
                **kwargs,
            )
            loaded[vendor] = sum(r.rows_loaded for r in results)
    finally:
        con.close()
    return {"date": day, "skipped": False, "rows_loaded": loaded}


# --------------------------------------------------------------------------- quality gate


def check_data_quality(run_date: date, settings: Settings) -> dict[str, Any]:
    """Run the data-quality suites (``tokenbook check``) over the date against its history and
    store their results in raw.validation_results (replacing the date's earlier ones).
    Raises QualityGateFailed with one line per failed expectation (observed value, expected
    range, what to look at) or suite without results."""
    from ingestion.quality import check_dates

    run_date = as_run_date(run_date)
    result = check_dates(settings, [run_date])
    for note in result.notes:
        log.warning("data quality %s: %s", run_date, note)
    if not result.success:
        raise QualityGateFailed(
            f"data-quality check failed for {run_date}:\n" + "\n".join(result.failure_lines())
            + "\n(results in raw.validation_results; fix the feed and rerun the date, or "
            "adjust quality_thresholds.csv in the configuration folder)"
        )
    return {
        "date": run_date.isoformat(),
        "expectations": len(result.outcomes),
        "not_evaluable": len(result.not_evaluable()),
    }


def check_quality(run_date: date, settings: Settings) -> dict[str, Any]:
    """Gate before the models: the date's gateway partition was loaded, completely, and the
    data-quality suites stored results for it that passed (every gateway suite has at least
    one result). Raises QualityGateFailed naming what is wrong."""
    run_date = as_run_date(run_date)
    wh = Warehouse.from_settings(settings)
    if wh.kind != "duckdb":
        return _check_quality_bigquery(run_date, settings)
    from tokenbook.dbt import ensure_raw_tables
    # A night with no bills or evals yet still builds: the raw layer is complete (empty tables).
    ensure_raw_tables(settings)

    # Not read_only: DuckDB refuses a second configuration for a file already open in this
    # process (dbt-duckdb keeps its connection when Airflow runs tasks in one process).
    con = connect_duckdb(wh)
    try:
        audit = _latest_gateway_audit(con, run_date)
        checks = _latest_checkpoint(con, run_date)
    finally:
        con.close()
    return _judge_quality(run_date, audit, checks)


def _table_exists(con, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def _latest_gateway_audit(con, run_date: date) -> dict[str, Any] | None:
    if not _table_exists(con, "raw", "load_audit"):
        return None
    row = con.execute(
        """
        with latest as (
            select load_id from raw.load_audit
            where load_date = ? and source = 'gateway' and status <> 'refused'
            order by finished_at desc nulls last limit 1
        )
        select count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined),
               sum(rows_duplicate), count(*) filter (where status <> 'loaded'), max(load_id)
        from raw.load_audit
        where load_date = ? and source = 'gateway' and load_id in (select load_id from latest)
        """,
        [run_date, run_date],
    ).fetchone()
    if not row or not row[0]:
        return None
    keys = ("files", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "failed")
    return {**{k: int(v or 0) for k, v in zip(keys, row[:-1], strict=True)}, "load_id": row[-1]}


def _latest_checkpoint(con, run_date: date) -> list[dict[str, Any]]:
    """The date's stored data-quality results (raw.validation_results, written by
    ``tokenbook check`` / the data_quality task)."""
    if not _table_exists(con, "raw", "validation_results"):
        return []
    from ingestion.quality import migrate_results_table

    migrate_results_table(con)  # an older table has no suite column yet
    rows = con.execute(_checkpoint_sql("raw.validation_results", "?"), [run_date]).fetchall()
    return [{"expectation": r[0], "success": r[1], "suite": r[2], "load_id": r[3]}
            for r in rows]


def _checkpoint_sql(table: str, date_param: str) -> str:
    """The date's results as (expectation label, success, suite): the same SQL on DuckDB and
    BigQuery, only the table name and the date parameter's placeholder differ."""
    return f"""
        select coalesce(suite, checkpoint) || ': ' || coalesce(column_name, expectation)
               || coalesce(' = ' || observed_value, '') as expectation, success, suite,
               load_id
        from {table} where load_date = {date_param}
    """


def _judge_quality(
    run_date: date, audit: dict[str, Any] | None, checks: list[dict[str, Any]]
) -> dict[str, Any]:
    day = run_date.isoformat()
    if audit is None:
        raise QualityGateFailed(
            f"no gateway load recorded in raw.load_audit for {day}: run the ingest_gateway "
            "task (or `tokenbook ingest gateway --date`) for this date first"
        )
    if audit["failed"]:
        raise QualityGateFailed(f"the latest gateway load for {day} has failed files: {audit}")
    if audit["rows_read"] != audit["rows_loaded"] + audit["rows_quarantined"] + audit["rows_duplicate"]:
        raise QualityGateFailed(
            f"gateway load for {day} does not balance (read != loaded + quarantined + "
            f"duplicates): {audit}"
        )
    if audit["rows_loaded"] == 0:
        raise QualityGateFailed(
            f"gateway load for {day} loaded no rows ({audit['rows_quarantined']} quarantined): "
            "look at raw.quarantine for the reasons"
        )
    from ingestion.quality import GATEWAY_SUITES

    failed = [c["expectation"] for c in checks if c["success"] is False]
    if failed:
        raise QualityGateFailed(
            f"data-quality check failed for {day}: {failed}; see raw.validation_results"
        )
    ran = {c.get("suite") for c in checks}
    missing = [s for s in GATEWAY_SUITES if s not in ran]
    if missing:
        raise QualityGateFailed(
            f"no data-quality results for {day} from the suites {missing}: run the "
            f"data_quality task (or `tokenbook check --date {day}`) before the models"
        )
    stale = {c.get("load_id") for c in checks} - {audit.get("load_id")}
    if stale:
        raise QualityGateFailed(
            f"the data-quality results of {day} were computed on an earlier load of the date "
            f"(load {sorted(map(str, stale))}, latest {audit.get('load_id')}): rerun the "
            f"data_quality task (or `tokenbook check --date {day}`)"
        )
    return {"date": day, **audit, "expectations": len(checks)}


def _check_quality_bigquery(run_date: date, settings: Settings) -> dict[str, Any]:
    wh = Warehouse.from_settings(settings)
    client = wh.bigquery_client()
    from google.cloud import bigquery

    sql = f"""
        with latest as (
            select load_id from {wh.table("raw", "load_audit")}
            where load_date = @d and source = 'gateway' and status != 'refused'
            order by finished_at desc limit 1
        )
        select count(*) as files, sum(rows_read) as rows_read, sum(rows_loaded) as rows_loaded,
               sum(rows_quarantined) as rows_quarantined, sum(rows_duplicate) as rows_duplicate,
               countif(status != 'loaded') as failed, max(load_id) as load_id
        from {wh.table("raw", "load_audit")}
        where load_date = @d and source = 'gateway' and load_id in (select load_id from latest)
    """
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("d", "DATE", run_date)]
    )
    rows = list(client.query(sql, job_config=config).result())
    audit = None
    if rows and rows[0]["files"]:
        audit = {k: rows[0][k] if k == "load_id" else int(rows[0][k] or 0)
                 for k in rows[0].keys()}
    return _judge_quality(run_date, audit, _latest_checkpoint_bigquery(client, wh, config))


def _latest_checkpoint_bigquery(client, wh, config) -> list[dict[str, Any]]:
    """The date's stored Great Expectations results on BigQuery (``validation_results``, one
    partition per load date, replaced by each gateway load): as ``_latest_checkpoint``."""
    from google.api_core.exceptions import NotFound

    sql = _checkpoint_sql(wh.table("raw", "validation_results"), "@d")
    try:
        rows = list(client.query(sql, job_config=config).result())
    except NotFound:  # no gateway load has stored results in this dataset yet
        return []
    return [{"expectation": r["expectation"], "success": r["success"], "suite": r["suite"],
             "load_id": r["load_id"]} for r in rows]


# --------------------------------------------------------------------------- configuration


def load_org_config(run_date: date, settings: Settings) -> dict[str, Any]:
    """Validate the organisation's configuration folder and load it into raw.config_* before
    the models build. Raises ConfigInvalid (file, line, column, what to write) on an invalid
    folder, so the DAG stops before dbt with the message `tokenbook config check` prints."""
    from tokenbook.orgconfig.load import load_config

    cfg = load_config(settings)
    return {"date": as_run_date(run_date).isoformat(),
            "config_dir": str(cfg.folder) if cfg.folder is not None else None,
            "files": cfg.status()}


# --------------------------------------------------------------------------- dbt


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
    from tokenbook.dbt import DBT_PROJECT_DIR, run_dbt

    base = Path(target_dir) if target_dir is not None else DBT_PROJECT_DIR
    run_dbt(["parse"], settings, target_path=base)
    manifest = base / "target" / "manifest.json"
    if not manifest.is_file():
        raise OrchestrationError(f"dbt parse finished but wrote no manifest at {manifest}")
    return manifest


def dbt_run_vars(run_date: date) -> dict[str, str]:
    """dbt ``--vars`` of a nightly run: the date the models build for."""
    return {"run_date": as_run_date(run_date).isoformat()}


# Models that read the forecast tables: built after the forecast step (after_forecast_models).
AFTER_FORECAST_SELECTOR = "tag:after_forecast"


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
    from tokenbook.dbt import log_file, run_dbt, stage_lines

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


# --------------------------------------------------------------------------- forecasting

FORECAST_TARGET = "forecasting.job:forecast_warehouse"
ANOMALY_TARGET = "forecasting.job:score_day_warehouse"


def _forecast_config(settings: Settings):
    from forecasting.config import ForecastConfig

    folder = settings.resolved_config_dir
    return ForecastConfig(anomaly_level=settings.anomaly_level,
                          config_dir=str(folder) if folder is not None else None)


def score_anomalies(run_date: date, settings: Settings) -> dict[str, Any]:
    """Score the date's spend (total, per provider, per feature) against the interval of the
    latest weekly fit that did not see it; rewrites the date's rows of marts.anomaly_flags."""
    run_date = as_run_date(run_date)
    score = _resolve(ANOMALY_TARGET)
    report = score(Warehouse.from_settings(settings), run_date, _forecast_config(settings))
    return _summary(report, {"date": run_date.isoformat()})


def refit_forecast(run_date: date, settings: Settings) -> dict[str, Any]:
    """Refit every forecast as of the date and rewrite the four forecast tables for it
    (the DAG calls it on Mondays; ``is_refit_day``)."""
    run_date = as_run_date(run_date)
    forecast = _resolve(FORECAST_TARGET)
    run = forecast(Warehouse.from_settings(settings), run_date, _forecast_config(settings))
    flagged = 0 if run.anomalies.empty else int(run.anomalies["is_anomaly"].sum())
    return {
        "date": run_date.isoformat(),
        "series": int(run.daily["unique_id"].nunique()) if not run.daily.empty else 0,
        "anomalies": flagged,
    }


# --------------------------------------------------------------------------- report, exports

REPORT_TARGET = "tokenbook.report:write_report"
CHARGEBACK_TARGET = "tokenbook.exports:export_chargeback"
FOCUS_TARGET = "tokenbook.focus_export:export_focus"
FOCUS_MONTHS_TARGET = "tokenbook.focus_export:focus_months"
CHARGEBACK_MONTHS_TARGET = "tokenbook.exports:chargeback_months"
EXPORT_FORMATS = ("csv", "parquet")
OUTPUTS = ("chargeback", "focus", "report")
# Late data settles within dbt's lookback: the first nights of a month re-export the last one.
RESTATE_DAYS = 3


def export_months(run_date: date) -> list[str]:
    """Months whose finance exports the date's run writes: its own month to date, and the
    previous month during the first RESTATE_DAYS days (late records may still change it)."""
    run_date = as_run_date(run_date)
    months = [run_date.strftime("%Y-%m")]
    if run_date.day <= RESTATE_DAYS:
        months.insert(0, (run_date.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    return months


def publish_outputs(
    run_date: date, settings: Settings, inputs: RunInputs, outputs: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Write what finance and the CFO read, under ``out_dir``, for the date's month(s).

    - ``chargeback``: ``exports/chargeback-YYYY-MM.{csv,parquet}`` (fails when the date's own
      month has no rows: its ledger was just built, so that is an error);
    - ``focus``: ``exports/focus-YYYY-MM.{parquet,csv}`` (FOCUS 1.2); a month with no billing
      yet is logged and skipped, since invoices arrive days after usage;
    - ``report``: ``reports/tokenbook-report-YYYY-MM.html`` for the date's month.

    ``outputs`` defaults to ``TOKENBOOK_PUBLISH`` (comma separated) or all three. Files are
    named by month, so a rerun of any date of the month overwrites the same files.
    """
    run_date = as_run_date(run_date)
    if outputs is None:
        env = os.environ.get(ENV_PUBLISH, "")
        outputs = tuple(o.strip() for o in env.split(",") if o.strip()) or OUTPUTS
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise OrchestrationError(
            f"unknown outputs {sorted(unknown)} in {ENV_PUBLISH}; choose from {', '.join(OUTPUTS)}"
        )
    out = Path(inputs.out_dir)
    exports = out / "exports"
    summary: dict[str, Any] = {"date": run_date.isoformat(), "written": []}
    own_month = run_date.strftime("%Y-%m")
    for month in export_months(run_date):
        if "chargeback" in outputs:
            export, months = _resolve(CHARGEBACK_TARGET), _resolve(CHARGEBACK_MONTHS_TARGET)
            if month != own_month and month not in {m.strftime("%Y-%m") for m in months(settings)}:
                log.info("no ledger rows for %s (before the first load): not restated", month)
                continue
            for fmt in EXPORT_FORMATS:
                result = export(settings, month, fmt, exports / f"chargeback-{month}.{fmt}")
                summary["written"].append(str(result.path))
        if "focus" in outputs:
            export, months = _resolve(FOCUS_TARGET), _resolve(FOCUS_MONTHS_TARGET)
            if month not in {m.strftime("%Y-%m") for m in months(settings)}:
                log.info("no FOCUS rows for %s yet (no invoice lines loaded): not exported", month)
                continue
            for fmt in EXPORT_FORMATS:
                result = export(settings, month, exports / f"focus-{month}.{fmt}", fmt=fmt)
                summary["written"].append(str(result.path))
    if "report" in outputs:
        write_report = _resolve(REPORT_TARGET)
        path = write_report(settings, out / "reports" / "", month=run_date.replace(day=1))
        summary["written"].append(str(path))
    return summary


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class FailureRecord:
    """One failed task try, as an operator reads it in raw.pipeline_failures."""

    dag_id: str
    task_id: str
    run_id: str
    logical_date: datetime | None
    run_date: date | None
    try_number: int
    exception_type: str
    exception_text: str
    failed_at: datetime


def redact_text(text: str) -> str:
    """PII-redact free text with the ingestion redactor (values of prompt-text and identifier
    keys in a quoted record masked whole, then every kind redacted). A redactor that cannot be
    imported raises (the failure callback logs it): text is never stored unredacted, and a
    broken installation is never hidden behind a placeholder."""
    import duckdb

    from ingestion.raw.redact import mask_quoted_records_sql

    expr = mask_quoted_records_sql("t.msg")
    con = duckdb.connect()
    try:
        row = con.execute(f"select {expr} from (select ?::varchar as msg) t", [text]).fetchone()
    finally:
        con.close()
    return "" if row is None or row[0] is None else str(row[0])


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def failure_record(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    logical_date: datetime | None,
    run_date: date | datetime | None,
    try_number: int,
    exception: BaseException | str | None,
    failed_at: datetime | None = None,
) -> FailureRecord:
    """Build the record: the exception text is redacted, then truncated."""
    if isinstance(exception, BaseException):
        etype = type(exception).__name__
        text = str(exception)
    else:
        etype = "" if exception is None else "error"
        text = "" if exception is None else str(exception)
    text = redact_text(text)
    if len(text) > FAILURE_TEXT_LIMIT:
        text = text[: FAILURE_TEXT_LIMIT - 14] + " …[truncated]"
    return FailureRecord(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        logical_date=_naive_utc(logical_date),
        run_date=None if run_date is None else as_run_date(run_date),
        try_number=int(try_number or 0),
        exception_type=etype,
        exception_text=text,
        failed_at=failed_at or datetime.now(UTC).replace(tzinfo=None),  # audit timestamp only
    )


def record_failure(settings: Settings, record: FailureRecord) -> str:
    """Store the record in ``raw.pipeline_failures``; returns the table written.

    DuckDB: delete-then-insert on (dag_id, task_id, run_id, try_number), so recording the
    same try twice leaves one row. BigQuery: one append load job (no streaming buffer).
    """
    wh = Warehouse.from_settings(settings)
    if wh.kind == "bigquery":
        return _record_failure_bigquery(settings, record)
    from ingestion.raw.schema import duckdb_ddl
    table = wh.table("raw", FAILURES_TABLE)
    con = connect_duckdb(wh)
    try:
        con.execute(duckdb_ddl(table, FAILURE_COLUMNS))
        con.execute("begin")
        con.execute(
            f"delete from {table} where dag_id = ? and task_id = ? and run_id = ? and try_number = ?",
            [record.dag_id, record.task_id, record.run_id, record.try_number],
        )
        con.execute(
            f"insert into {table} values ({', '.join('?' * len(FAILURE_COLUMNS))})",
            [getattr(record, name) for name, _, _ in FAILURE_COLUMNS],
        )
        con.execute("commit")
    finally:
        con.close()
    return table


def _record_failure_bigquery(settings: Settings, record: FailureRecord) -> str:
    from google.cloud import bigquery

    wh = Warehouse.from_settings(settings)
    table_id = f"{wh.project}.{wh.schema('raw')}.{FAILURES_TABLE}"
    schema = [bigquery.SchemaField(name, bq) for name, _, bq in FAILURE_COLUMNS]
    config = bigquery.LoadJobConfig(
        schema=schema,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
    )
    row = asdict(record)
    row["logical_date"] = None if record.logical_date is None else record.logical_date.isoformat()
    row["run_date"] = None if record.run_date is None else record.run_date.isoformat()
    row["failed_at"] = record.failed_at.isoformat()
    client = wh.bigquery_client()
    client.load_table_from_json([row], table_id, job_config=config).result()
    return table_id

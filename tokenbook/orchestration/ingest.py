"""Steps ``ingest_gateway`` and ``ingest_billing``: the date's files into the raw tables.

The loaders (``ingestion.gateway.pipeline``, ``ingestion.billing.loader``) are imported when
the step runs (:func:`~tokenbook.orchestration.steps.resolve`).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from core.settings import Settings
from core.warehouse import Warehouse
from ingestion.billing.schema import VENDORS
from ingestion.raw.fetch import NoObjectMatches
from ingestion.raw.guard import LoadRefused
from tokenbook.orchestration.errors import MissingInput
from tokenbook.orchestration.inputs import (
    ENV_BILLING_PATH,
    ENV_GATEWAY_PATH,
    RunInputs,
    as_run_date,
)
from tokenbook.orchestration.steps import load_module, resolve, summary

log = logging.getLogger(__name__)

GATEWAY_TARGET = "ingestion.gateway.pipeline:ingest_gateway"
BILLING_LOADER = "ingestion.billing.loader"
BILLING_SINK_TARGET = "ingestion.billing.bigquery:BigQueryBillingSink"

# Gateway files of one day, as the demo (and most log shippers) lay them out.
GATEWAY_SUFFIXES = (".jsonl.gz", ".jsonl", ".ndjson.gz", ".ndjson", ".json.gz", ".json", ".parquet")


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
    in their own step (``check_data_quality``). A delivery with no valid record, or one
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
    try:
        files = gateway_files_for(run_date, inputs.gateway_path)
    except MissingInput:
        quiet = quiet_day(run_date, settings) if Path(inputs.gateway_path).is_dir() else None
        if quiet is None:
            raise
        return _skipped(run_date, f"no gateway file for {run_date}: {quiet}")
    ingest = resolve(GATEWAY_TARGET)
    log.info("ingesting %d gateway file(s) for %s: %s", len(files), run_date, files)
    try:
        report = ingest(files, settings, date=run_date, replace=replace)
    except NoObjectMatches:  # a gs:// path: the day's pattern matched no object
        quiet = quiet_day(run_date, settings)
        if quiet is None:
            raise
        return _skipped(run_date,
                        f"no gateway object for {run_date} under {inputs.gateway_path}: {quiet}")
    except LoadRefused as exc:  # an empty file is what some exporters write for a quiet day
        quiet = quiet_day(run_date, settings) if exc.rows_read == 0 else None
        if quiet is None:
            raise
        return _skipped(run_date, f"the gateway file(s) for {run_date} hold no record: {quiet}",
                        files=files)
    notes = list(getattr(report, "notes", []) or [])
    for note in notes:  # e.g. calls with a service tier outside the known ones: loaded, reported
        log.warning("gateway load for %s: %s", run_date, note)
    return summary(report, {"date": run_date.isoformat(), "files": files, "notes": notes})


def _skipped(run_date: date, reason: str, **extra: Any) -> dict[str, Any]:
    """The result of a quiet day's gateway task: nothing loaded, and why (logged)."""
    log.info(reason)
    return {"date": run_date.isoformat(), **extra, "skipped": True, "reason": reason}


def quiet_day(run_date: date, settings: Settings) -> str | None:
    """Why no gateway file is the expected delivery of ``run_date`` (a weekday declared closed
    in ``closed_weekdays``, or with no call in weeks: an organisation closed at weekends), or
    None (a missing delivery: the task fails and Airflow retries it). The rule of the freshness
    check (``ingestion.quality_gate``)."""
    from ingestion.quality_gate import declared_closed_reason, history_dates, quiet_day_reason
    from ingestion.quality_thresholds import load_thresholds

    thresholds = load_thresholds(folder=settings.resolved_config_dir)
    declared = declared_closed_reason(run_date, thresholds)
    if declared:  # closed_weekdays: quiet from the first day, whatever the warehouse holds
        return declared
    wh = Warehouse.from_settings(settings)
    if wh.is_bigquery:
        history = history_dates(wh, run_date, int(thresholds["history_days"]))
    elif not wh.path.exists():
        return None
    else:
        # not read_only: DuckDB refuses a second configuration of a file this process has
        # open (dbt-duckdb keeps its connection when Airflow runs tasks in one process)
        con = wh.connect(wait_seconds=settings.lock_wait_seconds)
        try:
            history = history_dates(wh, run_date, int(thresholds["history_days"]), con=con)
        finally:
            con.close()
    return quiet_day_reason(history, run_date, thresholds)


def billing_files_for(run_date: date, billing_path: str) -> dict[str, tuple[str, list[str]]]:
    """The date's billing exports under ``billing_path``, per vendor: ``{vendor: (rule, files)}``.

    Layout: one folder per vendor (``openai/``, ``anthropic/``, ``gcp/``, ``aws/``, ``azure/``).
    API vendors (openai, anthropic) export daily: files whose name carries the date
    (``*YYYY-MM-DD*``) load into that date's partition (rule ``date``). File-export vendors
    (gcp, aws, azure) restate one file per month through the month: files whose name carries
    the month (``*YYYY-MM*``) replace that month's partition every night (rule ``month``).
    """
    loader = load_module(BILLING_LOADER)
    root = Path(billing_path)
    found: dict[str, tuple[str, list[str]]] = {}
    if not root.is_dir():
        return found
    for vendor in VENDORS:
        folder = root / vendor
        if not folder.is_dir():
            continue
        monthly = vendor in loader.MONTHLY_VENDORS
        stamp = run_date.strftime("%Y-%m") if monthly else run_date.isoformat()
        files = sorted(
            str(p)
            for p in folder.rglob(f"*{stamp}*")
            if p.is_file() and p.name.lower().endswith(loader.SUFFIXES)
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
    plan = billing_files_for(run_date, inputs.billing_path)
    ingest_billing = resolve(f"{BILLING_LOADER}:ingest_billing")
    if not plan:
        reason = f"no billing files for {day} under {inputs.billing_path}; billing skipped"
        log.info(reason)
        return {"date": day, "skipped": True, "reason": reason}
    wh = Warehouse.from_settings(settings)
    sink = None
    if wh.is_bigquery:
        # Parse and validate in a local DuckDB; publish with BigQuery load jobs.
        con = duckdb.connect()
        sink = resolve(BILLING_SINK_TARGET).from_settings(settings)
    else:
        con = wh.connect(wait_seconds=settings.lock_wait_seconds)
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

"""Steps ``data_quality`` and ``quality_gate``: the suites over the date, then the gate.

The suites and the gate's SQL and rules are ingestion's (``ingestion/quality.py``,
``ingestion/quality_gate.py``); these steps run them for the run's date and stop the run
with :class:`QualityGateFailed` naming what is wrong.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from core.settings import Settings
from core.warehouse import Warehouse
from ingestion.quality import check_dates
from ingestion.quality_gate import gate_failure, read_gate
from ingestion.quality_thresholds import load_thresholds
from tokenbook.dbt import ensure_raw_tables
from tokenbook.orchestration.errors import QualityGateFailed
from tokenbook.orchestration.inputs import as_run_date

log = logging.getLogger(__name__)


def check_data_quality(run_date: date, settings: Settings) -> dict[str, Any]:
    """Run the data-quality suites (``tokenbook check``) over the date against its history and
    store their results in raw.validation_results (replacing the date's earlier ones).
    Raises QualityGateFailed with one line per failed expectation (observed value, expected
    range, what to look at) or suite without results."""
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
    days = int(load_thresholds(folder=settings.resolved_config_dir)["history_days"])
    if wh.is_bigquery:
        gate = read_gate(wh, run_date, history_days=days)
    else:
        # A night with no bills or evals yet still builds: the raw layer is complete (empty
        # tables). Not read_only: DuckDB refuses a second configuration for a file already open
        # in this process (dbt-duckdb keeps its connection when Airflow runs tasks in one).
        ensure_raw_tables(settings)
        con = wh.connect()
        try:
            gate = read_gate(wh, run_date, con=con, history_days=days)
        finally:
            con.close()
    failure = gate_failure(run_date, gate)
    if failure:
        raise QualityGateFailed(failure)
    if gate.audit is None:  # passed without a load: the check judged it a quiet day
        log.info("quality gate %s: no gateway load, a quiet day of this organisation by the "
                 "data-quality check (gateway_freshness not evaluable)", run_date)
    return {"date": run_date.isoformat(), **(gate.audit or {}), "quiet_day": gate.audit is None,
            "expectations": len(gate.checks)}

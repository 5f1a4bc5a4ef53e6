"""Step ``publish_outputs``: what finance and the CFO read, for the date's month(s).

The exporters and the report are imported when the step runs (``steps.resolve``).
"""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.settings import Settings
from tokenbook.orchestration.errors import OrchestrationError
from tokenbook.orchestration.inputs import ENV_PUBLISH, RunInputs, as_run_date
from tokenbook.orchestration.steps import resolve

log = logging.getLogger(__name__)

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
            export, months = resolve(CHARGEBACK_TARGET), resolve(CHARGEBACK_MONTHS_TARGET)
            if month != own_month and month not in {m.strftime("%Y-%m") for m in months(settings)}:
                log.info("no ledger rows for %s (before the first load): not restated", month)
                continue
            for fmt in EXPORT_FORMATS:
                result = export(settings, month, fmt, exports / f"chargeback-{month}.{fmt}")
                summary["written"].append(str(result.path))
        if "focus" in outputs:
            export, months = resolve(FOCUS_TARGET), resolve(FOCUS_MONTHS_TARGET)
            if month not in {m.strftime("%Y-%m") for m in months(settings)}:
                log.info("no FOCUS rows for %s yet (no invoice lines loaded): not exported", month)
                continue
            for fmt in EXPORT_FORMATS:
                result = export(settings, month, exports / f"focus-{month}.{fmt}", fmt=fmt)
                summary["written"].append(str(result.path))
    if "report" in outputs:
        write_report = resolve(REPORT_TARGET)
        path = write_report(settings, out / "reports" / "", month=run_date.replace(day=1))
        summary["written"].append(str(path))
    return summary

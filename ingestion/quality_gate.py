"""The gate before the models: may the date's gateway partition go to dbt?

It passes when the latest gateway load of the date (``raw.load_audit``) finished, balances
(rows read = loaded + quarantined + duplicates) and loaded rows, and the data-quality suites
(:mod:`ingestion.quality`, stored in ``raw.validation_results``) have results for that very
load with no failed expectation, every gateway suite with at least one result, and every billing
suite too when ``raw.billing_lines`` has lines for usage dates in the date's history (as
``tokenbook check`` expects them). A result that is not evaluable (``success`` NULL) is a
result, not a failure; a suite with no result is a failure (zero results is never a pass).

One SQL per question, rendered for both engines (only the table names and the date
parameter's placeholder differ), read by :func:`read_gate`; :func:`gate_failure` decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from core.query import table_exists
from core.warehouse import Warehouse
from ingestion.quality import BILLING_SUITES, GATEWAY_SUITES, migrate_results_table
from ingestion.quality_thresholds import closed_weekdays

AUDIT_KEYS = ("files", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate",
              "failed")


def latest_load_sql(table: str, date_param: str) -> str:
    """The date's latest gateway load (not a refused one) summed over its files."""
    return f"""
        with latest as (
            select load_id from {table}
            where load_date = {date_param} and source = 'gateway' and status <> 'refused'
            order by finished_at desc nulls last limit 1
        )
        select count(*) as files, sum(rows_read) as rows_read, sum(rows_loaded) as rows_loaded,
               sum(rows_quarantined) as rows_quarantined, sum(rows_duplicate) as rows_duplicate,
               count(case when status <> 'loaded' then 1 end) as failed, max(load_id) as load_id
        from {table}
        where load_date = {date_param} and source = 'gateway'
          and load_id in (select load_id from latest)
    """


def results_sql(table: str, date_param: str, billing_table: str | None = None,
                history_days: int = 28, bigquery: bool = False) -> str:
    """The date's stored results as (expectation label, success, suite, load_id), each with
    ``billing_lines``: the billing lines whose usage date is in the date's history (the check's
    window; when any, the billing suites must have results too). Asked in the same query: a
    stored result means the check ran, and it profiles ``billing_table``, so that table
    exists."""
    first = (f"date_sub({date_param}, interval {int(history_days)} day)" if bigquery
             else f"cast({date_param} as date) - {int(history_days)}")
    billing = ("0" if billing_table is None else
               f"(select count(*) from {billing_table} "
               f"where usage_date between {first} and {date_param})")
    return f"""
        select coalesce(suite, checkpoint) || ': ' || coalesce(column_name, expectation)
               || coalesce(' = ' || observed_value, '') as expectation, success, suite,
               load_id, {billing} as billing_lines
        from {table} where load_date = {date_param}
    """


@dataclass(frozen=True)
class GateInputs:
    """What the gate reads for one date: the latest gateway load's audit (None: no load) and
    the stored data-quality results."""

    audit: dict[str, Any] | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    billing_lines: int = 0


def read_gate(wh: Warehouse, run_date: date, con=None, client=None, history_days: int = 28
              ) -> GateInputs:
    """The date's audit, results and billing lines in its history (``history_days``, the
    check's threshold), from ``con`` (DuckDB) or ``client`` (BigQuery; the warehouse's own when
    None). A table not created yet reads as empty."""
    param = "@d" if wh.is_bigquery else "$d"
    if not wh.is_bigquery and table_exists(con, wh, "raw", "validation_results"):
        migrate_results_table(con, wh.schema("raw"))  # an older table has no suite column yet
    audit_rows = _rows(wh, con, client, "load_audit",
                       latest_load_sql(wh.table("raw", "load_audit"), param), run_date)
    checks = _rows(wh, con, client, "validation_results",
                   results_sql(wh.table("raw", "validation_results"), param,
                               wh.table("raw", "billing_lines"), history_days, wh.is_bigquery),
                   run_date)
    audit = None
    if audit_rows and audit_rows[0]["files"]:
        row = audit_rows[0]
        audit = {**{k: int(row[k] or 0) for k in AUDIT_KEYS}, "load_id": row["load_id"]}
    keys = ("expectation", "success", "suite", "load_id")
    lines = max((int(r.get("billing_lines") or 0) for r in checks), default=0)
    return GateInputs(audit, [{k: r[k] for k in keys} for r in checks], lines)


def _rows(wh: Warehouse, con, client, table: str, sql: str, run_date: date) -> list[dict]:
    """``sql`` with the date bound to ``d``, as dicts; [] when ``table`` does not exist."""
    if wh.is_bigquery:
        from google.api_core.exceptions import NotFound  # google: imported on BigQuery only
        from google.cloud import bigquery

        client = client if client is not None else wh.bigquery_client()
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("d", "DATE", run_date)]
        )
        try:
            return [dict(r.items()) for r in client.query(sql, job_config=config).result()]
        except NotFound:  # no load has created the table in this dataset yet
            return []
    if not table_exists(con, wh, "raw", table):
        return []
    cur = con.execute(sql, {"d": run_date})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def quiet_day_reason(history: list[date], run_date: date, thresholds: dict[str, float]
                     ) -> str | None:
    """Why ``run_date`` is a quiet day of the organisation, or None when it is not (or there is
    too little history to say). ``history``: the load dates with calls before ``run_date``.

    The rule of ``gateway_freshness`` (``quality_sql._metrics_sql``): no call on this weekday
    in any of the ``min_history_days`` or more weeks since the first day with calls in the
    ``history_days`` before (a business closed at weekends). A new organisation's first weeks
    are never quiet: a day without a file then is a missing delivery, unless its weekday is
    declared closed (``closed_weekdays``): then it is quiet from the first day."""
    declared = declared_closed_reason(run_date, thresholds)
    if declared:
        return declared
    h, m = int(thresholds["history_days"]), int(thresholds["min_history_days"])
    days = [d for d in history if run_date - timedelta(days=h) <= d < run_date]
    if not days:
        return None
    weeks = (run_date - min(days)).days // 7
    if weeks < m or any((run_date - d).days % 7 == 0 for d in days):
        return None
    return (f"no call on this weekday ({run_date:%A}) in any of the {weeks} weeks of history "
            "(a quiet day of this organisation): nothing to load")


def declared_closed_reason(run_date: date, thresholds: dict[str, float]) -> str | None:
    """Why ``run_date`` is a quiet day by the configuration (its weekday is one of
    ``closed_weekdays`` in quality_thresholds.csv), or None. Needs no history."""
    if run_date.weekday() not in closed_weekdays(thresholds):
        return None
    return (f"{run_date:%A} is a declared closed day of this organisation (closed_weekdays in "
            "quality_thresholds.csv): nothing to load")


def history_dates(wh: Warehouse, run_date: date, history_days: int, con=None, client=None
                  ) -> list[date]:
    """The load dates with calls in the ``history_days`` before ``run_date`` (both engines:
    DATE literals, no dialect function); [] when raw.gateway_calls does not exist yet."""
    if not table_exists(con, wh, "raw", "gateway_calls", client=client):
        return []
    lo = run_date - timedelta(days=int(history_days))
    sql = (f"select load_date from {wh.table('raw', 'gateway_calls')} "
           f"where load_date >= DATE '{lo.isoformat()}' "
           f"and load_date < DATE '{run_date.isoformat()}' group by load_date")
    if wh.is_bigquery:
        client = client if client is not None else wh.bigquery_client()
        return [r["load_date"] for r in client.query(sql).result()]
    return [r[0] for r in con.execute(sql).fetchall()]


def gate_failure(run_date: date, gate: GateInputs) -> str | None:
    """Why the date's models must not build (the first reason found), or None: they may.

    A date with no gateway load passes only when its stored ``gateway_freshness`` result is
    *not evaluable* (the check judged it a quiet day of the organisation: no call on this
    weekday in weeks) and every other rule holds."""
    day = run_date.isoformat()
    audit, checks = gate.audit, gate.checks
    quiet = audit is None and any(
        c.get("suite") == "gateway_freshness" and c["success"] is None for c in checks)
    if audit is None and not quiet:
        return (f"no gateway load recorded in raw.load_audit for {day}: run the ingest_gateway "
                "task (or `tokenbook ingest gateway --date`) for this date first")
    if quiet:
        return _results_failure(day, gate)
    if audit["failed"]:
        return f"the latest gateway load for {day} has failed files: {audit}"
    if audit["rows_read"] != audit["rows_loaded"] + audit["rows_quarantined"] + audit["rows_duplicate"]:
        return (f"gateway load for {day} does not balance (read != loaded + quarantined + "
                f"duplicates): {audit}")
    if audit["rows_loaded"] == 0:
        return (f"gateway load for {day} loaded no rows ({audit['rows_quarantined']} "
                "quarantined): look at raw.quarantine for the reasons")
    failure = _results_failure(day, gate)
    if failure:
        return failure
    stale = {c.get("load_id") for c in checks} - {audit.get("load_id")}
    if stale:
        return (f"the data-quality results of {day} were computed on an earlier load of the "
                f"date (load {sorted(map(str, stale))}, latest {audit.get('load_id')}): rerun "
                f"the data_quality task (or `tokenbook check --date {day}`)")
    return None


def _results_failure(day: str, gate: GateInputs) -> str | None:
    """A failed expectation, or a suite that should have run without a result, or None."""
    checks = gate.checks
    failed = [c["expectation"] for c in checks if c["success"] is False]
    if failed:
        return f"data-quality check failed for {day}: {failed}; see raw.validation_results"
    ran = {c.get("suite") for c in checks}
    expected = GATEWAY_SUITES + (BILLING_SUITES if gate.billing_lines else ())
    missing = [s for s in expected if s not in ran]
    if missing:
        return (f"no data-quality results for {day} from the suites {missing}: run the "
                f"data_quality task (or `tokenbook check --date {day}`) before the models")
    return None

"""A failed task try, recorded where an operator reads it: ``raw.pipeline_failures``.

The DAG's failure and retry callbacks build a :class:`FailureRecord` (the exception text
redacted, then truncated) and store it with :func:`record_failure`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import duckdb

from core.settings import Settings
from core.warehouse import Warehouse
from ingestion.raw.schema import duckdb_ddl
from tokenbook.orchestration.inputs import as_run_date

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
    # Imported at the call (tests/test_no_silent_fallbacks.py breaks this very import to
    # check that the callback then raises instead of storing the text).
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
    if wh.is_bigquery:
        return _record_failure_bigquery(wh, record)
    table = wh.table("raw", FAILURES_TABLE)
    con = wh.connect()
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


def _record_failure_bigquery(wh: Warehouse, record: FailureRecord) -> str:
    from google.cloud import bigquery  # google: imported on BigQuery only

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
    wh.bigquery_client().load_table_from_json([row], table_id, job_config=config).result()
    return table_id

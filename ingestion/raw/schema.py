"""The raw tables every source writes, and the DDL helpers for any raw table.

Each source owns its own table (``raw.gateway_calls`` in ``ingestion/gateway/schema.py``,
``raw.billing_lines`` in ``ingestion/billing/schema.py``, ``raw.evals`` in
``ingestion/evals.py``); the four tables here are shared: every load writes its rejected
records to ``raw.quarantine`` and its redaction counts to ``raw.pii_redactions`` under its own
``source`` value (``gateway``, ``billing_<vendor>``, ``evals``), appends one row per file to
``raw.load_audit``; ``tokenbook check`` writes ``raw.validation_results``.

A table is described by a tuple of ``(column, DuckDB type, BigQuery type)``: the same tuple
creates the DuckDB table (:func:`duckdb_ddl`), the BigQuery table (:func:`bigquery_ddl`) and the
load-job schema (``ingestion/raw/sinks/bigquery.py``). Change a column here and in the dbt
sources (``dbt_project/models/staging/*/_*__sources.yml``) together.
"""

from __future__ import annotations

Columns = tuple[tuple[str, str, str], ...]

# raw.quarantine: one row per rejected record, partitioned by load_date.
QUARANTINE_COLUMNS: Columns = (
    ("load_date", "DATE", "DATE"),
    ("source", "VARCHAR", "STRING"),  # gateway | billing_openai | ...
    ("source_file", "VARCHAR", "STRING"),
    ("line_number", "BIGINT", "INT64"),
    ("reason", "VARCHAR", "STRING"),
    # a rejected record after the field rules (prompt text dropped, identifiers pseudonymised,
    # the rest redacted), or for a line that did not parse: its length, hash and redacted shape
    ("raw_line", "VARCHAR", "STRING"),
)

# raw.pii_redactions: counts only, partitioned by load_date.
PII_REDACTIONS_COLUMNS: Columns = (
    ("load_date", "DATE", "DATE"),
    ("source", "VARCHAR", "STRING"),
    ("source_file", "VARCHAR", "STRING"),
    ("field", "VARCHAR", "STRING"),
    ("kind", "VARCHAR", "STRING"),  # email | phone | card | iban | ssn | ip | secret
    ("redactions", "BIGINT", "INT64"),
)

# raw.load_audit: one row per file per run (append-only; the only table a rerun grows).
LOAD_AUDIT_COLUMNS: Columns = (
    ("load_id", "VARCHAR", "STRING"),
    ("source", "VARCHAR", "STRING"),
    ("source_file", "VARCHAR", "STRING"),
    ("load_date", "DATE", "DATE"),
    ("rows_read", "BIGINT", "INT64"),
    ("rows_loaded", "BIGINT", "INT64"),
    ("rows_quarantined", "BIGINT", "INT64"),
    ("rows_duplicate", "BIGINT", "INT64"),
    ("started_at", "TIMESTAMP", "TIMESTAMP"),
    ("finished_at", "TIMESTAMP", "TIMESTAMP"),
    ("status", "VARCHAR", "STRING"),  # loaded | failed
)

# raw.validation_results: one row per (date, suite, expectation) of `tokenbook check`
# (ingestion/quality.py), replaced when the date is checked again; partitioned by load_date.
VALIDATION_RESULTS_COLUMNS: Columns = (
    ("load_date", "DATE", "DATE"),
    ("checkpoint", "VARCHAR", "STRING"),
    ("data_asset", "VARCHAR", "STRING"),
    ("expectation", "VARCHAR", "STRING"),
    ("column_name", "VARCHAR", "STRING"),  # the metric checked
    ("parameters", "VARCHAR", "STRING"),  # the expectation's arguments as JSON text
    ("success", "BOOLEAN", "BOOL"),  # NULL: not evaluable (observed_value says why)
    ("element_count", "BIGINT", "INT64"),  # calls of the date
    ("unexpected_count", "BIGINT", "INT64"),
    ("observed_value", "VARCHAR", "STRING"),
    ("suite", "VARCHAR", "STRING"),
    ("min_value", "DOUBLE", "FLOAT64"),  # the threshold(s) in force
    ("max_value", "DOUBLE", "FLOAT64"),
    ("look_at", "VARCHAR", "STRING"),  # what to look at when it fails
    ("load_id", "VARCHAR", "STRING"),  # the gateway load of the date the check read
)

#: raw.pii_redactions.kind values, in the order the redactor (``ingestion/raw/redact.py``) runs.
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip", "secret")

#: The tables of this module, by name (``ensure_raw_tables`` in the DuckDB sink creates them).
TABLES: dict[str, Columns] = {
    "quarantine": QUARANTINE_COLUMNS,
    "pii_redactions": PII_REDACTIONS_COLUMNS,
    "load_audit": LOAD_AUDIT_COLUMNS,
    "validation_results": VALIDATION_RESULTS_COLUMNS,
}


def column_names(columns: Columns) -> str:
    """``a, b, c``: the column list of an INSERT ... SELECT."""
    return ", ".join(name for name, _, _ in columns)


def duckdb_ddl(table: str, columns: Columns) -> str:
    cols = ",\n  ".join(f"{name} {ddb}" for name, ddb, _ in columns)
    return f"create table if not exists {table} (\n  {cols}\n)"


def bigquery_ddl(table: str, columns: Columns, partition: str, cluster: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for BigQuery, partitioned by ``partition`` (a DATE column,
    or ``_PARTITIONDATE`` for ingestion-time partitioning) and clustered by ``cluster``."""
    body = ", ".join(f"{name} {bq}" for name, _, bq in columns)
    out = f"CREATE TABLE IF NOT EXISTS `{table}` ({body}) PARTITION BY {partition}"
    return out + (f" CLUSTER BY {cluster}" if cluster else "")

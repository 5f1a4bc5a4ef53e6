"""The native gateway-log record, the gateway's own raw table, and what its sinks do.

This module is the contract between the readers (native, LiteLLM, OTel), the pipeline
(validate, redact, dedupe), the sinks (``ingestion/raw/sinks/``: DuckDB, BigQuery) and dbt's
sources. Change a column here and in dbt_project/models/staging/gateway/_gateway__sources.yml
together. The tables the gateway shares with the other sources (quarantine, PII counts, load
audit, validation results) are in ``ingestion/raw/schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

# Native format fields, in file order, with the type they are validated to.
REQUIRED_FIELDS: tuple[str, ...] = (
    "request_id",
    "timestamp",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
)

# name -> logical type: string | timestamp | int | float | bool | decimal | json
NATIVE_FIELDS: dict[str, str] = {
    "request_id": "string",
    "timestamp": "timestamp",
    "provider": "string",
    "model": "string",
    "input_tokens": "int",
    "output_tokens": "int",
    "trace_id": "string",
    "attempt": "int",
    "latency_ms": "float",
    "feature": "string",
    "customer_segment": "string",
    "team": "string",
    "customer_id": "string",
    "environment": "string",
    "request_class": "string",
    "api_key_id": "string",
    "project_id": "string",
    "cache_read_input_tokens": "int",
    "cache_write_input_tokens": "int",
    "cache_write_ttl": "string",
    "reasoning_tokens": "int",
    "batch": "bool",
    "service_tier": "string",
    "status": "string",
    "outcome": "string",
    "quality_score": "float",
    "prompt_template_id": "string",
    "prompt_prefix_hash": "string",
    "prompt_preview": "string",  # scanned for PII counts, never stored
    "metadata": "json",
    "cost_usd": "decimal",
}

# Field rules shared by every stored copy of a record (loaded rows AND quarantined records):
# prompt or completion text is scanned for PII counts, then dropped; identifiers are
# pseudonymised with the keyed hash; every other text field, metadata and unknown fields are
# redacted. Readers of other formats drop their own prompt/response fields (litellm.py, otel.py).
PROMPT_TEXT_FIELDS: tuple[str, ...] = ("prompt_preview",)
IDENTIFIER_FIELDS: tuple[str, ...] = ("customer_id",)

# raw.gateway_calls: one row per valid call-attempt record, partitioned by load_date.
# (column, DuckDB type, BigQuery type)
GATEWAY_CALLS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("load_date", "DATE", "DATE"),
    ("request_id", "VARCHAR", "STRING"),
    ("trace_id", "VARCHAR", "STRING"),
    ("attempt", "INTEGER", "INT64"),
    ("call_ts", "TIMESTAMP", "TIMESTAMP"),  # UTC
    ("provider", "VARCHAR", "STRING"),
    ("model", "VARCHAR", "STRING"),
    ("input_tokens", "BIGINT", "INT64"),  # ALL input, cache read + write included
    ("output_tokens", "BIGINT", "INT64"),  # reasoning included
    ("cache_read_input_tokens", "BIGINT", "INT64"),
    ("cache_write_input_tokens", "BIGINT", "INT64"),
    ("cache_write_ttl", "VARCHAR", "STRING"),
    ("reasoning_tokens", "BIGINT", "INT64"),
    ("batch", "BOOLEAN", "BOOL"),
    ("service_tier", "VARCHAR", "STRING"),
    ("status", "VARCHAR", "STRING"),
    ("outcome", "VARCHAR", "STRING"),
    ("quality_score", "DOUBLE", "FLOAT64"),
    ("latency_ms", "DOUBLE", "FLOAT64"),
    ("feature", "VARCHAR", "STRING"),
    ("customer_segment", "VARCHAR", "STRING"),
    ("team", "VARCHAR", "STRING"),
    ("customer_id", "VARCHAR", "STRING"),  # pseudonymised (keyed hash), never the raw id
    ("environment", "VARCHAR", "STRING"),
    ("request_class", "VARCHAR", "STRING"),
    ("api_key_id", "VARCHAR", "STRING"),
    ("project_id", "VARCHAR", "STRING"),
    ("prompt_template_id", "VARCHAR", "STRING"),
    ("prompt_prefix_hash", "VARCHAR", "STRING"),
    ("gateway_cost_usd", "DECIMAL(38,9)", "NUMERIC"),
    ("metadata", "JSON", "JSON"),  # redacted
    ("extra", "JSON", "JSON"),  # unknown fields, redacted
    ("source_format", "VARCHAR", "STRING"),  # native | litellm | otel
    ("source_file", "VARCHAR", "STRING"),
    ("source_line", "BIGINT", "INT64"),
)


@dataclass(frozen=True)
class PartitionTables:
    """Names of staged DuckDB tables holding one load date's rows, ready to publish."""

    gateway_calls: str
    quarantine: str
    pii_redactions: str


class Sink(Protocol):
    """Where the staged load dates are published. Implementations (``ingestion/raw/sinks/``):
    DuckDB (every date in one transaction), BigQuery (per date, ``gateway_calls$YYYYMMDD`` by a
    WRITE_TRUNCATE load job; the tables shared with other sources, quarantine and PII counts,
    through staging tables and one transaction that replaces only this source's rows of the
    date).

    ``calls_table``: where the published calls can be read back through the staging
    connection (DuckDB: the warehouse table itself), or None (BigQuery). When it is set, the
    pipeline publishes straight from views over its staged rows and checks what landed;
    otherwise it materialises the calls first and checks those."""

    calls_table: str | None

    def partition_rows(self, con, load_dates: list[date]) -> dict[date, int]:
        """Rows raw.gateway_calls holds now for each of ``load_dates`` (a date absent holds
        none): the shrink guard (``ingestion/raw/guard.py``) compares them with the load's."""

    def replace_partitions(self, con, load_dates: list[date], staged: PartitionTables,
                           progress: Callable[[int, int, str], None] | None = None) -> None:
        """Replace the ``load_dates`` partitions of raw.gateway_calls, raw.quarantine and
        raw.pii_redactions with the staged tables' rows of those dates (read through ``con``).
        ``progress(done, total, label)`` is called as dates are published."""

    def replace_validation_results(self, con, load_dates: list[date], staged: str) -> None:
        """Replace raw.validation_results of ``load_dates`` with ``staged``'s rows of them."""

    def append_audit(self, con, staged_audit: str) -> None:
        """Append the staged audit rows to raw.load_audit."""

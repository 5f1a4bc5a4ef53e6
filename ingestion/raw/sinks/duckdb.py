"""The DuckDB sink: raw tables created, staged partitions published atomically, audit appended.

``DuckDBSink`` implements ``ingestion.gateway.schema.Sink`` (the gateway's load dates) and the
two writes every source and ``tokenbook check`` share: ``append_audit`` (raw.load_audit) and
``replace_validation_results`` (raw.validation_results). ``ensure_raw_tables`` creates the raw
tables of ``ingestion/raw/schema.py`` and raw.gateway_calls.

One load (all its load dates, a 120-day backfill included) is one transaction: delete those
load dates from raw.gateway_calls, and their rows of this sink's ``source`` (``'gateway'``)
from raw.quarantine and raw.pii_redactions (billing and evals loads write their own ``source``
values into those shared tables for the same dates: a gateway rerun must not wipe them),
insert the staged rows, commit. A failure or a killed process at any point leaves the
previous partitions as they were (DuckDB's write-ahead log rolls back an uncommitted
transaction on the next open).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS, PartitionTables
from ingestion.raw.schema import (
    LOAD_AUDIT_COLUMNS,
    PII_REDACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    TABLES,
    VALIDATION_RESULTS_COLUMNS,
    Columns,
    column_names,
    duckdb_ddl,
)

RAW_TABLES: dict[str, Columns] = {"gateway_calls": GATEWAY_CALLS_COLUMNS, **TABLES}

# Test seam: called inside the publish transaction, after the deletes and before the inserts.
_after_delete: Callable[[date], None] | None = None


def ensure_raw_tables(con, schema: str = "raw") -> None:
    con.execute(f"create schema if not exists {schema}")
    for name, columns in RAW_TABLES.items():
        con.execute(duckdb_ddl(f"{schema}.{name}", columns))


def append_audit(con, staged_audit: str, schema: str = "raw") -> None:
    """Append the staged audit rows to ``schema``.load_audit (every source's loads)."""
    cols = column_names(LOAD_AUDIT_COLUMNS)
    con.execute(f"insert into {schema}.load_audit ({cols}) select {cols} from {staged_audit}")


class DuckDBSink:
    """``schema.Sink`` for a DuckDB warehouse. ``con`` passed to each call must be a connection
    to the warehouse file itself (the pipeline stages in TEMP tables of that connection)."""

    def __init__(self, schema: str = "raw", source: str = "gateway") -> None:
        self.schema = schema
        # raw.quarantine and raw.pii_redactions are shared by sources: only this one's rows
        # of the load date are replaced.
        self.source = source

    @property
    def calls_table(self) -> str:
        """Where the published calls can be read back through the same connection: the
        pipeline publishes straight from its views and checks what landed."""
        return f"{self.schema}.gateway_calls"

    def prepare(self, con) -> None:
        ensure_raw_tables(con, self.schema)

    def partition_rows(self, con, load_dates: list[date]) -> dict[date, int]:
        """Rows raw.gateway_calls holds now for each of ``load_dates`` (absent: none)."""
        rows = con.execute(
            f"select load_date, count(*) from {self.schema}.gateway_calls "
            "where list_contains(?, load_date) group by load_date",
            [sorted(set(load_dates))],
        ).fetchall()
        return {d: int(n) for d, n in rows}

    def replace_partitions(self, con, load_dates: list[date], staged: PartitionTables,
                           progress: Callable[[int, int, str], None] | None = None) -> None:
        """Replace the partitions of all ``load_dates`` in ONE transaction (a 120-day backfill
        commits once, not 120 times); ``staged`` holds those dates' rows (it may hold more:
        only rows of ``load_dates`` are inserted). ``progress`` is not called: there is one
        step, the caller reports it."""
        pairs = (
            ("gateway_calls", GATEWAY_CALLS_COLUMNS, staged.gateway_calls),
            ("quarantine", QUARANTINE_COLUMNS, staged.quarantine),
            ("pii_redactions", PII_REDACTIONS_COLUMNS, staged.pii_redactions),
        )
        dates = sorted(set(load_dates))
        con.execute("begin transaction")
        try:
            con.execute(
                f"delete from {self.schema}.gateway_calls where list_contains(?, load_date)",
                [dates],
            )
            for table in ("quarantine", "pii_redactions"):
                con.execute(
                    f"delete from {self.schema}.{table} "
                    "where list_contains(?, load_date) and source = ?",
                    [dates, self.source],
                )
            if _after_delete is not None:
                for d in dates:
                    _after_delete(d)
            for table, columns, source in pairs:
                cols = column_names(columns)
                con.execute(
                    f"insert into {self.schema}.{table} ({cols}) select {cols} from {source} "
                    "where list_contains(?, load_date)",
                    [dates],
                )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    def append_audit(self, con, staged_audit: str) -> None:
        append_audit(con, staged_audit, self.schema)

    def replace_validation_results(self, con, load_dates: list[date], staged: str) -> None:
        """Replace the results of ``load_dates`` (one transaction) with ``staged``'s rows of
        those dates."""
        dates = sorted(set(load_dates))
        cols = column_names(VALIDATION_RESULTS_COLUMNS)
        con.execute("begin transaction")
        try:
            con.execute(
                f"delete from {self.schema}.validation_results where list_contains(?, load_date)",
                [dates],
            )
            con.execute(
                f"insert into {self.schema}.validation_results ({cols}) select {cols} "
                f"from {staged} where list_contains(?, load_date)",
                [dates],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

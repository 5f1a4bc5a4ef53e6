"""Finance exports: one month of the chargeback mart as a CSV or Parquet file.

The rows come from ``marts.mart_chargeback`` (DuckDB) or ``<prefix>_marts.mart_chargeback``
(BigQuery, through the google-cloud-bigquery client). Money stays decimal end to end: Arrow
``decimal128(38, 9)`` in Parquet, the exact decimal text in CSV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from core.settings import Settings
from core.warehouse import Warehouse

FORMATS = ("csv", "parquet")
CHARGEBACK_TABLE = "mart_chargeback"
# Finance reads the rows in this order.
CHARGEBACK_ORDER = "cost_centre, team, customer_segment"


class ExportError(ValueError):
    """An export that cannot be made; the message says what to do instead."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    month: date
    rows: int
    list_cost_usd: Decimal
    effective_cost_usd: Decimal


def parse_month(text: str) -> date:
    """``YYYY-MM`` -> the month's first day."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ExportError(f"bad month {text!r}: write it as YYYY-MM, e.g. 2025-01")
    return date(int(match.group(1)), int(match.group(2)), 1)


def export_chargeback(settings: Settings, month: str, fmt: str, out: str | Path) -> ExportResult:
    """Write the chargeback rows of ``month`` (YYYY-MM) to ``out`` as ``fmt`` (csv | parquet).

    ``out`` is a file path, or a folder (existing, or ending with ``/``; the file is then
    named ``chargeback-YYYY-MM.<fmt>``). Raises ExportError when the month has no rows, naming the
    months that do.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    month_start = parse_month(month)
    table = read_chargeback(settings, month_start)
    if table.num_rows == 0:
        available = chargeback_months(settings)
        listed = (
            ", ".join(m.strftime("%Y-%m") for m in available) or "none (run `tokenbook transform`)"
        )
        raise ExportError(f"no chargeback rows for {month_start:%Y-%m}; months available: {listed}")
    path = write_export(table, fmt, out, f"chargeback-{month_start:%Y-%m}.{fmt}", write_table)
    return ExportResult(
        path=path,
        month=month_start,
        rows=table.num_rows,
        list_cost_usd=_decimal_sum(table, "list_cost_usd"),
        effective_cost_usd=_decimal_sum(table, "effective_cost_usd"),
    )


def _output_path(out: str | Path, default_name: str) -> Path:
    """A folder (existing, or written with a trailing slash) gets ``default_name`` inside it."""
    text = str(out)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", "\\")):
        return path / default_name
    return path


def read_chargeback(settings: Settings, month_start: date) -> pa.Table:
    """The chargeback rows of one month as an Arrow table (money as decimal128)."""
    wh = Warehouse.from_settings(settings)
    return query_mart(
        wh,
        f"select * from {wh.table('marts', CHARGEBACK_TABLE)} "
        f"where month_start = @month_start order by {CHARGEBACK_ORDER}",
        month_start,
    )


def chargeback_months(settings: Settings) -> list[date]:
    """Months present in the chargeback mart, oldest first."""
    wh = Warehouse.from_settings(settings)
    sql = f"select distinct month_start from {wh.table('marts', CHARGEBACK_TABLE)} order by month_start"
    table = query_mart(wh, sql)
    return list(table.column("month_start").to_pylist())


def write_export(table: pa.Table, fmt: str, out: str | Path, default_name: str,
                 writer=None) -> Path:
    """Write ``table`` to ``out`` (a file, or a folder that gets ``default_name``) with
    ``writer(table, fmt, path)``; an unwritable path is an ExportError saying what to do."""
    path = _output_path(out, default_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        (writer or write_table)(table, fmt, path)
    except OSError as exc:
        raise ExportError(
            f"cannot write {path}: {exc.strerror or exc}; choose another --out"
        ) from exc
    return path


def write_table(table: pa.Table, fmt: str, path: Path) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pcsv.write_csv(_fixed_point(table), path)


def _fixed_point(table: pa.Table) -> pa.Table:
    """Money columns as fixed-point text for CSV, all digits kept: Arrow writes a decimal as
    Python does (a zero cost as ``0E-9``, $0.00000045 as ``4.50E-7``), which an ERP or a
    strict decimal parser rejects. DuckDB's text of a DECIMAL never uses an exponent."""
    money = [f.name for f in table.schema if pa.types.is_decimal(f.type)]
    if not money:
        return table
    con = duckdb.connect()
    try:
        con.register("_export", table.select(money))
        cols = ", ".join(f'cast("{c.replace(chr(34), chr(34) * 2)}" as varchar)' for c in money)
        text = con.sql(f"select {cols} from _export").to_arrow_table()
    finally:
        con.close()
    for i, name in enumerate(money):
        table = table.set_column(table.schema.get_field_index(name), name, text.column(i))
    return table


def _decimal_sum(table: pa.Table, column: str) -> Decimal:
    total = pc.sum(table.column(column)).as_py()
    return Decimal(total) if total is not None else Decimal(0)


def query_mart(
    wh: Warehouse,
    sql: str,
    month_start: date | None = None,
    table: str = "",
    todo: str = "run `tokenbook transform` first",
) -> pa.Table:
    """Run ``sql`` on the warehouse as Arrow, ``@month_start`` bound to ``month_start`` (the
    same SQL on both engines). On DuckDB a missing file or mart (``table``, default the
    chargeback mart) is an ExportError that says what to do (``todo``)."""
    if wh.is_bigquery:
        return _bigquery_query(wh, sql, month_start)
    params = None if month_start is None else {"month_start": month_start}
    return _duckdb_query(wh, sql.replace("@month_start", "$month_start"), params, table, todo)


def _duckdb_query(wh: Warehouse, sql: str, params: dict | None, table: str, todo: str
                  ) -> pa.Table:
    assert wh.path is not None
    if not wh.path.exists():
        raise ExportError(f"no warehouse at {wh.location}: run `tokenbook transform` first")
    # Not read-only: DuckDB refuses a read-only connection to a file that the same process
    # (e.g. dbt run in-process) already holds open read-write.
    con = wh.connect()
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except duckdb.CatalogException as exc:
        raise ExportError(
            f"{wh.table('marts', table or CHARGEBACK_TABLE)} does not exist in {wh.path}: {todo}"
        ) from exc
    finally:
        con.close()


def _bigquery_query(wh: Warehouse, sql: str, month_start: date | None) -> pa.Table:
    """Run one query with the BigQuery client; NUMERIC arrives as decimal128(38, 9)."""
    from google.cloud import bigquery  # google: imported on BigQuery only

    params = []
    if month_start is not None:
        params = [bigquery.ScalarQueryParameter("month_start", "DATE", month_start)]
    client = wh.bigquery_client()
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    return job.result().to_arrow()

"""Daily exchange rates -> ``raw.fx_rates`` (``tokenbook fx load FILE``).

Billing lines keep the amount and currency the vendor billed; dbt converts them to USD (the
ledger's currency) and to the reporting currency with these rates, and reports a line whose
rate is missing as unconverted, never as dollars.

Two formats, detected from the header:

- the ECB euro foreign exchange reference rates, as the ECB publishes them
  (``eurofxref-hist.csv`` / ``eurofxref.csv``: ``Date,USD,JPY,...``, one row per business day,
  each value = units of that currency per 1 EUR, ``N/A`` where none). Rates to USD follow:
  EUR = the USD column; currency C = USD / C. A day without a USD rate gives nothing.
- a simple ``date,currency,rate_to_usd`` file (one USD = 1 / rate units: ``GBP`` at ``1.27``
  means 1 GBP = 1.27 USD).

``raw.fx_rates`` holds one row per (rate_date, currency): ``rate_to_usd`` (DECIMAL(38,9), USD
per unit of the currency), ``source`` (``ecb`` or ``file``) and ``source_file``. A load replaces
the (date, currency) pairs its file holds and keeps every other rate, so loading the same
file twice changes nothing. A malformed row (a date or a rate that does not parse, a rate
<= 0, a currency that is not three letters) refuses the whole file, naming the line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core.textfile import NotUtf8Text, read_utf8
from ingestion.raw.schema import duckdb_ddl

FX_RATES_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rate_date", "DATE", "DATE"),
    ("currency", "VARCHAR", "STRING"),  # ISO 4217, upper case
    ("rate_to_usd", "DECIMAL(38,9)", "NUMERIC"),  # USD per 1 unit of the currency
    ("source", "VARCHAR", "STRING"),  # ecb | file
    ("source_file", "VARCHAR", "STRING"),
)
NINE = Decimal("0.000000001")


class FxFileError(ValueError):
    """The rates file cannot be read; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class FxLoadResult:
    path: str
    source: str
    rows: int
    currencies: tuple[str, ...]
    first_date: date | None
    last_date: date | None


def _date(value: str, path: Path, line: int) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise FxFileError(f"{path}, line {line}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _rate(value: str, path: Path, line: int, what: str) -> Decimal:
    try:
        rate = Decimal(value.strip())
    except InvalidOperation as exc:
        raise FxFileError(f"{path}, line {line}: {what} {value!r} is not a number") from exc
    if not rate.is_finite() or rate <= 0:
        raise FxFileError(f"{path}, line {line}: {what} {value!r} must be a positive number")
    return rate


def _currency(value: str, path: Path, line: int) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise FxFileError(f"{path}, line {line}: {value!r} is not an ISO 4217 currency code")
    return code


def read_rates(path: str | Path) -> tuple[str, list[tuple[date, str, Decimal]]]:
    """``(source, [(rate_date, currency, rate_to_usd)])`` from an ECB or a simple rates file."""
    path = Path(path)
    if not path.is_file():
        raise FxFileError(f"{path} does not exist or is not a file")
    try:
        text = read_utf8(path)
    except NotUtf8Text as exc:
        raise FxFileError(f"{exc}; nothing was loaded") from exc
    return _read_rates(path, text)


def _read_rates(path: Path, text: str) -> tuple[str, list[tuple[date, str, Decimal]]]:
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        lowered = [h.lower() for h in header]
        if lowered[:3] == ["date", "currency", "rate_to_usd"]:
            rows = []
            for line, rec in enumerate(reader, start=2):
                if not any(v.strip() for v in rec):
                    continue
                if len(rec) < 3:
                    raise FxFileError(f"{path}, line {line}: expected date,currency,rate_to_usd")
                rows.append(
                    (
                        _date(rec[0], path, line),
                        _currency(rec[1], path, line),
                        _rate(rec[2], path, line, "rate_to_usd"),
                    )
                )
            return "file", rows
        if lowered[:1] == ["date"] and "USD" in header:
            return "ecb", _ecb_rows(path, header, reader)
    raise FxFileError(
        f"{path}: header {header[:4]} is neither the ECB reference-rate CSV (Date,USD,JPY,...) "
        "nor date,currency,rate_to_usd"
    )


def _ecb_rows(path: Path, header: list[str], reader) -> list[tuple[date, str, Decimal]]:
    usd_at = header.index("USD")
    codes = [(i, h) for i, h in enumerate(header) if i > 0 and h]
    for _, code in codes:
        _currency(code, path, 1)
    rows: list[tuple[date, str, Decimal]] = []
    for line, rec in enumerate(reader, start=2):
        if not any(v.strip() for v in rec):
            continue
        day = _date(rec[0], path, line)
        usd = rec[usd_at].strip() if usd_at < len(rec) else ""
        if usd in ("", "N/A"):
            continue
        usd_per_eur = _rate(usd, path, line, "USD")
        rows.append((day, "EUR", usd_per_eur.quantize(NINE)))
        for i, code in codes:
            value = rec[i].strip() if i < len(rec) else ""
            if code == "USD" or value in ("", "N/A"):
                continue
            per_eur = _rate(value, path, line, code)
            rows.append((day, code, (usd_per_eur / per_eur).quantize(NINE)))
    return rows


def _arrow(path: str | Path):
    import pyarrow as pa

    source, rows = read_rates(path)
    if not rows:
        raise FxFileError(f"{path} holds no rate")
    latest: dict[tuple[date, str], Decimal] = {}
    for day, code, rate in rows:  # a pair given twice: the file's last value
        latest[(day, code)] = rate.quantize(NINE)
    keys = sorted(latest)
    arrow = pa.table(
        {
            "rate_date": pa.array([k[0] for k in keys], pa.date32()),
            "currency": pa.array([k[1] for k in keys], pa.string()),
            "rate_to_usd": pa.array([latest[k] for k in keys], pa.decimal128(38, 9)),
            "source": pa.array([source] * len(keys), pa.string()),
            "source_file": pa.array([str(path)] * len(keys), pa.string()),
        }
    )
    days = [k[0] for k in keys]
    result = FxLoadResult(
        str(path), source, len(keys), tuple(sorted({k[1] for k in keys})), min(days), max(days)
    )
    return arrow, result


def load_fx_rates_bigquery(client, table_id: str, path: str | Path) -> FxLoadResult:
    """BigQuery: one load job into a staging table (WRITE_TRUNCATE), then one MERGE into
    ``table_id`` (created when missing) on (rate_date, currency): atomic, rerunnable."""
    import io

    import pyarrow.parquet as pq
    from google.cloud import bigquery

    arrow, result = _arrow(path)
    schema = [bigquery.SchemaField(c, bq) for c, _, bq in FX_RATES_COLUMNS]
    client.create_table(bigquery.Table(table_id, schema=schema), exists_ok=True)
    stage_id = f"{table_id}__load"
    buf = io.BytesIO()
    pq.write_table(arrow, buf)
    buf.seek(0)
    config = bigquery.LoadJobConfig(
        schema=schema,
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    client.load_table_from_file(buf, stage_id, job_config=config).result()
    client.query(merge_sql(table_id, stage_id)).result()
    client.delete_table(stage_id, not_found_ok=True)
    return result


def merge_sql(table_id: str, stage_id: str) -> str:
    cols = [c for c, _, _ in FX_RATES_COLUMNS]
    return (
        f"merge `{table_id}` as t using `{stage_id}` as s "
        "on t.rate_date = s.rate_date and t.currency = s.currency "
        "when matched then update set "
        + ", ".join(f"{c} = s.{c}" for c in cols if c not in ("rate_date", "currency"))
        + f" when not matched then insert ({', '.join(cols)}) "
        f"values ({', '.join('s.' + c for c in cols)})"
    )


def load_fx_rates(con, path: str | Path, table: str = "raw.fx_rates") -> FxLoadResult:
    """Replace the (date, currency) pairs of the file in ``table`` (DuckDB), atomically."""
    arrow, result = _arrow(path)
    cols = ", ".join(c for c, _, _ in FX_RATES_COLUMNS)
    con.execute(duckdb_ddl(table, FX_RATES_COLUMNS))
    con.register("incoming_fx_rates", arrow)
    try:
        con.execute("begin")
        con.execute(
            f"delete from {table} where (rate_date, currency) in "
            "(select rate_date, currency from incoming_fx_rates)"
        )
        con.execute(f"insert into {table} ({cols}) select {cols} from incoming_fx_rates")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("incoming_fx_rates")
    return result

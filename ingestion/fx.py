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
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

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
    with path.open(newline="", encoding="utf-8-sig") as fh:
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


def load_fx_rates(con, path: str | Path, table: str = "raw.fx_rates") -> FxLoadResult:
    """Replace the (date, currency) pairs of the file in ``table`` (DuckDB), atomically."""
    import pyarrow as pa

    from ingestion.gateway.schema import duckdb_ddl

    source, rows = read_rates(path)
    if not rows:
        raise FxFileError(f"{path} holds no rate")
    name = str(path)
    arrow = pa.table(
        {
            "rate_date": pa.array([r[0] for r in rows], pa.date32()),
            "currency": pa.array([r[1] for r in rows], pa.string()),
            "rate_to_usd": pa.array([r[2].quantize(NINE) for r in rows], pa.decimal128(38, 9)),
            "source": pa.array([source] * len(rows), pa.string()),
            "source_file": pa.array([name] * len(rows), pa.string()),
        }
    )
    cols = ", ".join(c for c, _, _ in FX_RATES_COLUMNS)
    con.execute(duckdb_ddl(table, FX_RATES_COLUMNS))
    con.register("incoming_fx_rates", arrow)
    try:
        con.execute("begin")
        con.execute(
            f"delete from {table} where (rate_date, currency) in "
            "(select rate_date, currency from incoming_fx_rates)"
        )
        con.execute(
            f"insert into {table} ({cols}) select distinct on (rate_date, currency) {cols} "
            "from incoming_fx_rates"
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("incoming_fx_rates")
    days = [r[0] for r in rows]
    return FxLoadResult(
        name, source, len(rows), tuple(sorted({r[1] for r in rows})), min(days), max(days)
    )

"""Run the report's queries against the warehouse: query -> frame.

:class:`DuckSource` and :class:`BigQuerySource` answer the same three questions (which marts
tables exist with which columns, run this SQL, the dates the data covers); :func:`collect`
turns them into a :class:`ReportData` (one frame per query, with the SQL that made it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from tokenbook.report.queries import (
    CHARGEBACK_RECONCILED,
    CHARGEBACK_RECONCILED_COLUMNS,
    CORE,
    LEVERS,
    Catalogue,
    Period,
    Query,
    lever_query,
    reconciliation_queries,
    render_sql,
)
from tokenbook.warehouse import Warehouse, connect_duckdb


class ReportError(ValueError):
    """The report cannot be made; the message says what to run or pass instead."""


class DuckSource:
    def __init__(self, warehouse: Warehouse, con=None):
        self.warehouse = warehouse
        self._own = con is None
        if con is None:
            if warehouse.path is None or not warehouse.path.exists():
                raise ReportError(
                    f"no warehouse at {warehouse.location}: run `tokenbook run --demo` or "
                    "`tokenbook transform` first, or pass --warehouse"
                )
            # read-write like dbt's own connection: DuckDB refuses a read-only twin in-process
            con = connect_duckdb(warehouse)
        self.con = con

    def table(self, name: str) -> str:
        return self.warehouse.table("marts", name)

    def catalogue(self) -> Catalogue:
        rows = self.con.execute(
            "select table_name, lower(column_name) from information_schema.columns "
            "where table_schema = ?",
            [self.warehouse.schema("marts")],
        ).fetchall()
        cat = Catalogue()
        for table, column in rows:
            cat.tables.setdefault(table, set()).add(column)
        return cat

    def frame(self, sql: str) -> pd.DataFrame:
        cur = self.con.execute(sql)
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols, dtype=object)

    def close(self) -> None:
        if self._own:
            self.con.close()


class BigQuerySource:
    def __init__(self, warehouse: Warehouse, client=None):
        if client is None:
            from google.cloud import bigquery

            client = bigquery.Client(project=warehouse.project)
        self.warehouse = warehouse
        self.client = client

    def table(self, name: str) -> str:
        return self.warehouse.table("marts", name)

    def catalogue(self) -> Catalogue:
        dataset = f"`{self.warehouse.project}.{self.warehouse.schema('marts')}`"
        df = self.frame(
            f"select table_name, lower(column_name) as column_name "
            f"from {dataset}.INFORMATION_SCHEMA.COLUMNS"
        )
        cat = Catalogue()
        for table, column in zip(df["table_name"], df["column_name"], strict=True):
            cat.tables.setdefault(table, set()).add(column)
        return cat

    def frame(self, sql: str) -> pd.DataFrame:
        rows = list(self.client.query(sql).result())
        if not rows:
            return pd.DataFrame()
        cols = list(rows[0].keys())
        return pd.DataFrame([list(r.values()) for r in rows], columns=cols, dtype=object)

    def close(self) -> None:
        pass


def open_source(warehouse: Warehouse, con=None, client=None):
    if warehouse.kind == "duckdb":
        return DuckSource(warehouse, con)
    return BigQuerySource(warehouse, client)


@dataclass
class Result:
    query: Query
    sql: str
    frame: pd.DataFrame


@dataclass
class ReportData:
    period: Period
    data_start: date
    results: dict[str, Result] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # section -> why it is not shown
    levers: list[tuple[object, Result]] = field(default_factory=list)

    def frame(self, name: str) -> pd.DataFrame:
        res = self.results.get(name)
        return res.frame if res is not None else pd.DataFrame()


def last_complete_month(data_end: date) -> date:
    """The latest month whose last day is on or before the last call date."""
    if (data_end + timedelta(days=1)).day == 1:
        return data_end.replace(day=1)
    return (data_end.replace(day=1) - timedelta(days=1)).replace(day=1)


def _scalar(source, sql: str):
    df = source.frame(sql)
    return None if df.empty else df.iloc[0, 0]


def _as_date(value) -> date | None:
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date()


def resolve_period(source, catalogue: Catalogue, month: date | None) -> tuple[Period, date]:
    if not catalogue.has("fct_llm_calls"):
        raise ReportError(
            f"the marts have no fct_llm_calls table in {source.warehouse.url}: "
            "run `tokenbook transform` (dbt build) first"
        )
    span = source.frame(
        f"select min(call_date) as first_day, max(call_date) as last_day "
        f"from {source.table('fct_llm_calls')}"
    )
    first_day, data_end = _as_date(span.iloc[0, 0]), _as_date(span.iloc[0, 1])
    if data_end is None:
        raise ReportError("marts.fct_llm_calls is empty: load gateway logs and build the marts")
    if month is None:
        month = last_complete_month(data_end)
        if month < first_day.replace(day=1):
            month = data_end.replace(day=1)  # less than a month of data: the open month
    month = month.replace(day=1)
    if not first_day.replace(day=1) <= month <= data_end.replace(day=1):
        raise ReportError(
            f"no calls in {month:%Y-%m}: the ledger covers {first_day} to {data_end}; "
            f"pass --month between {first_day:%Y-%m} and {data_end:%Y-%m}"
        )

    def latest(table: str) -> date | None:
        if not catalogue.has(table):
            return None
        return _as_date(_scalar(source, f"select max(as_of) from {source.table(table)}"))

    period = Period(
        month=month,
        data_end=data_end,
        forecast_as_of=latest("forecast_monthly"),
        anomaly_as_of=latest("anomaly_flags"),
    )
    return period, first_day


OPTIONAL_SECTIONS = {
    "reconciliation": "mart_reconciliation",
}


def how_to_fill(tables) -> str:
    """The command that fills a section whose tables are absent or empty, as advice."""
    names = " ".join(str(t) for t in tables)
    if "forecast" in names or "anomal" in names:
        return "run `tokenbook forecast`, then `tokenbook transform` for the marts that read it"
    if any(k in names for k in ("reconcil", "focus", "invoice", "billing")):
        return ("load the vendors' invoices with `tokenbook ingest billing`, then run "
                "`tokenbook transform`")
    if "eval" in names:
        return "load eval results with `tokenbook ingest evals`, then run `tokenbook transform`"
    return "run `tokenbook transform` (after `tokenbook ingest gateway`)"


def collect(source, month: date | None = None) -> ReportData:
    """Run every query the report needs; optional sections only where their table exists."""
    catalogue = source.catalogue()
    period, first_day = resolve_period(source, catalogue, month)
    data = ReportData(period=period, data_start=first_day)

    def run(query: Query) -> Result:
        sql = render_sql(query, period, source.table)
        return Result(query, sql, source.frame(sql))

    for query in CORE:
        absent = [t for t in query.tables if not catalogue.has(t)]
        if absent:
            data.missing[query.name] = (f"{', '.join(absent)} not in this warehouse: "
                                        f"{how_to_fill(absent)}")
            continue
        data.results[query.name] = run(query)

    recon_table = OPTIONAL_SECTIONS["reconciliation"]
    if not catalogue.has(recon_table):
        data.missing["reconciliation"] = (f"{recon_table} is not available in this warehouse: "
                                          f"{how_to_fill([recon_table])}")
    else:
        queries = reconciliation_queries(catalogue.tables[recon_table])
        if queries is None:
            data.missing["reconciliation"] = (
                f"{recon_table} has no provider / gateway cost / invoice cost / month columns "
                "this report knows"
            )
        else:
            for query in queries:
                data.results[query.name] = run(query)
    table = CHARGEBACK_RECONCILED.tables[0]
    if CHARGEBACK_RECONCILED_COLUMNS <= catalogue.tables.get(table, set()):
        data.results[CHARGEBACK_RECONCILED.name] = run(CHARGEBACK_RECONCILED)
    else:
        data.missing[CHARGEBACK_RECONCILED.name] = (
            f"{table} is not available in this warehouse: {how_to_fill([table])}")

    for lever in LEVERS:
        if not catalogue.has(lever.table):
            data.missing[f"lever__{lever.table}"] = (f"{lever.table} is not available: "
                                                     f"{how_to_fill([lever.table])}")
            continue
        query = lever_query(lever, catalogue.tables[lever.table])
        if query is None:
            data.missing[f"lever__{lever.table}"] = f"{lever.table} has no dollar column known"
            continue
        result = run(query)
        data.results[query.name] = result
        data.levers.append((lever, result))
    return data

"""`tokenbook export chargeback`: files finance can open, with the mart's exact totals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from warehouse_copy import copy_warehouse_tree

from core.settings import load_settings
from core.warehouse import connect_duckdb, parse_warehouse
from tokenbook.cli import app
from tokenbook.exports import ExportError, export_chargeback, parse_month

MONEY = pa.decimal128(38, 9)


@pytest.fixture(scope="module")
def warehouse(marts_warehouse_built, tmp_path_factory: pytest.TempPathFactory) -> str:
    # tests/test_marts.py's build_marts_warehouse, built once per session (tests/conftest.py);
    # this module's copy
    root, url = marts_warehouse_built
    return copy_warehouse_tree(root, tmp_path_factory.mktemp("export") / "copy", url)


@pytest.fixture(scope="module")
def january_totals(warehouse: str) -> dict:
    con = connect_duckdb(parse_warehouse(warehouse))
    try:
        n, lst, eff = con.execute(
            "select count(*), sum(list_cost_usd), sum(effective_cost_usd) "
            "from marts.mart_chargeback where month_start = date '2026-01-01'"
        ).fetchone()
    finally:
        con.close()
    assert n > 0 and eff > 0
    return {"rows": n, "list": lst, "effective": eff}


def run_cli(*args: str):
    return CliRunner().invoke(app, ["export", "chargeback", *args])


def test_csv_export_has_the_months_rows_and_exact_totals(
    warehouse: str, january_totals: dict, tmp_path: Path
) -> None:
    out = tmp_path / "finance" / "chargeback.csv"
    result = run_cli(
        "--month", "2026-01", "--format", "csv", "--out", str(out), "--warehouse", warehouse
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {january_totals['rows']} chargeback rows for 2026-01" in result.output
    table = pcsv.read_csv(
        out,
        convert_options=pcsv.ConvertOptions(
            column_types={"list_cost_usd": MONEY, "effective_cost_usd": MONEY}
        ),
    )
    assert table.num_rows == january_totals["rows"]
    assert set(table.column("month_start").to_pylist()) == {date(2026, 1, 1)}
    assert sum(table.column("effective_cost_usd").to_pylist()) == january_totals["effective"]
    assert sum(table.column("list_cost_usd").to_pylist()) == january_totals["list"]
    assert "(unattributed)" in table.column("team").to_pylist()


def test_parquet_export_keeps_money_decimal(
    warehouse: str, january_totals: dict, tmp_path: Path
) -> None:
    settings = load_settings(warehouse=warehouse)
    # A folder (here a new one, written with a trailing slash) gets a named file.
    result = export_chargeback(settings, "2026-01", "parquet", f"{tmp_path / 'finance'}/")
    assert result.path == tmp_path / "finance" / "chargeback-2026-01.parquet"
    table = pq.read_table(result.path)
    assert table.schema.field("effective_cost_usd").type == MONEY
    assert table.num_rows == result.rows == january_totals["rows"]
    assert result.effective_cost_usd == january_totals["effective"]
    assert sum(table.column("list_cost_usd").to_pylist()) == january_totals["list"]


def test_unknown_month_names_the_months_that_exist(warehouse: str, tmp_path: Path) -> None:
    result = run_cli(
        "--month", "2024-07", "--out", str(tmp_path / "x.csv"), "--warehouse", warehouse
    )
    assert result.exit_code == 1
    assert "no chargeback rows for 2024-07" in result.output
    assert "months available: 2025-12, 2026-01, 2026-02" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_bad_month_and_format_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="YYYY-MM"):
        parse_month("2026-13")
    with pytest.raises(ExportError, match="YYYY-MM"):
        parse_month("January")
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'none.duckdb'}")
    with pytest.raises(ExportError, match="csv, parquet"):
        export_chargeback(settings, "2026-01", "xlsx", tmp_path / "x")
    with pytest.raises(ExportError, match="run `tokenbook transform` first"):
        export_chargeback(settings, "2026-01", "csv", tmp_path / "x.csv")
    empty = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    connect_duckdb(parse_warehouse(empty)).close()
    with pytest.raises(ExportError, match="mart_chargeback does not exist.*tokenbook transform"):
        export_chargeback(load_settings(warehouse=empty), "2026-01", "csv", tmp_path / "x.csv")


class _FakeJob:
    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def result(self):
        return self

    def to_arrow(self) -> pa.Table:
        return self._table


class _FakeBigQueryClient:
    """Stands in for google.cloud.bigquery.Client (BigQuery cannot be reached here)."""

    calls: list[dict] = []

    def __init__(self, project=None, location=None) -> None:
        self.project, self.location = project, location

    def query(self, sql, job_config=None):
        params = {p.name: (p.type_, p.value) for p in job_config.query_parameters}
        self.calls.append(
            {"project": self.project, "location": self.location, "sql": sql, "params": params}
        )
        if "distinct month_start" in sql:
            return _FakeJob(pa.table({"month_start": [date(2026, 1, 1)]}))
        if params["month_start"][1] != date(2026, 1, 1):
            return _FakeJob(pa.table({"month_start": pa.array([], pa.date32())}))
        return _FakeJob(
            pa.table(
                {
                    "month_start": [date(2026, 1, 1)] * 2,
                    "cost_centre": ["FIN-10", "(unattributed)"],
                    "team": ["claims-ops", "(unattributed)"],
                    "customer_segment": ["enterprise", "smb"],
                    "list_cost_usd": pa.array([Decimal("4.5"), Decimal("0.25")], MONEY),
                    "effective_cost_usd": pa.array([Decimal("4.0"), Decimal("0.25")], MONEY),
                }
            )
        )


def test_bigquery_export_queries_the_marts_dataset(monkeypatch, tmp_path: Path) -> None:
    from google.cloud import bigquery

    _FakeBigQueryClient.calls = []
    monkeypatch.setattr(bigquery, "Client", _FakeBigQueryClient)
    settings = load_settings(warehouse="bigquery://orbit-finops/tokenbook", bq_location="EU")
    result = export_chargeback(settings, "2026-01", "parquet", tmp_path / "cb.parquet")
    (call,) = _FakeBigQueryClient.calls
    assert call["project"] == "orbit-finops" and call["location"] == "EU"
    assert "`orbit-finops.tokenbook_marts.mart_chargeback`" in call["sql"]
    assert "month_start = @month_start" in call["sql"]
    assert call["params"] == {"month_start": ("DATE", date(2026, 1, 1))}
    assert result.rows == 2 and result.effective_cost_usd == Decimal("4.25")
    assert pq.read_table(result.path).schema.field("list_cost_usd").type == MONEY

    with pytest.raises(ExportError, match="months available: 2026-01"):
        export_chargeback(settings, "2026-03", "csv", tmp_path / "cb.csv")


def test_csv_money_is_fixed_point_and_exact(tmp_path: Path) -> None:
    """A zero cost and a sub-cent cost are written as finance tools read them: Arrow's own
    text of a decimal is Python's (``0E-9``, ``4.50E-7``), which strict importers reject."""
    from tokenbook.exports import write_table

    amounts = [Decimal("0"), Decimal("0.000000450"), None, Decimal("-12.5"), Decimal("98765.4321")]
    table = pa.table({"team": ["a", "b", "c", "d", "e"], "cost_usd": pa.array(amounts, MONEY)})
    out = tmp_path / "x.csv"
    write_table(table, "csv", out)
    text = out.read_text()
    assert "E-" not in text and "e-" not in text, text
    assert '"0.000000000"' in text and '"0.000000450"' in text, text
    back = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(column_types={"cost_usd": MONEY}))
    assert back.column("cost_usd").to_pylist() == amounts

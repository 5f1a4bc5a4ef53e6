"""Money in other currencies is converted with loaded daily rates, never summed as dollars.

An Azure cost export billed in EUR and OpenAI cost lines billed in GBP (and one in CHF, whose
rate is never loaded), rates from the ECB reference-rate CSV and a simple
date,currency,rate_to_usd file; every total checked against figures converted by hand.

Rates (ECB: units per 1 EUR):  2026-11-02 USD 1.0800, GBP 0.8600;  2026-11-03 USD 1.0850,
GBP 0.8610;  simple file: 2026-11-05 GBP 1.30 USD.
- Azure, 2026-11-02, EUR 6.600 + 0.825: x 1.08 = USD 7.128 + 0.891 = 7.919
- OpenAI, 2026-11-03, GBP 10.00: GBP = 1.085 / 0.861 = 1.260162602 USD -> USD 12.601626020
- OpenAI, 2026-11-05, GBP 4.00: x 1.30 = USD 5.20
- OpenAI, 2026-11-04, CHF 3.00: no rate -> unconverted, left out of every USD total
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from core.warehouse import parse_warehouse
from ingestion.billing.loader import ingest_billing
from tokenbook.cli import app
from tokenbook.dbt import build, ensure_raw_tables

FIXTURES = Path(__file__).parent / "fixtures" / "billing"
EUR_2 = Decimal("1.0800")
GBP_3 = (Decimal("1.0850") / Decimal("0.8610")).quantize(Decimal("0.000000001"))
GBP_5 = Decimal("1.30")
AZURE_EUR = [Decimal("6.6"), Decimal("0.825")]
AZURE_USD = sum(a * EUR_2 for a in AZURE_EUR)  # 7.919
GBP_USD_3 = (Decimal("10.00") * GBP_3).quantize(Decimal("0.000000001"))
GBP_USD_5 = Decimal("4.00") * GBP_5
SELECT = [
    "+mart_reconciliation",
    "+fct_focus_cost",
    "+mart_chargeback_reconciled",
    "+mart_unconverted_billing",
]


def _azure_eur(path: Path) -> Path:
    lines = (FIXTURES / "azure_openai_actual_cost.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:3]
    rows = [
        r.replace(",USD,", ",EUR,").replace("outreach_writer", "claims_review")
        .replace("field-sales", "underwriting")
        for r in rows
    ]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _openai_costs(path: Path, buckets: list[tuple[date, str, str]]) -> Path:
    data = []
    for day, value, currency in buckets:
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        data.append(
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + 86400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": float(value), "currency": currency},
                        "line_item": "gpt-4o-2024-08-06, input",
                        "project_id": "proj_underwriting",
                        "api_key_id": None,
                        "quantity": None,
                        "quantity_unit": None,
                    }
                ],
            }
        )
    path.write_text(
        json.dumps({"object": "page", "data": data, "has_more": False, "next_page": None}),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("currency")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    settings, wh = load_settings(warehouse=url), parse_warehouse(url)
    ensure_raw_tables(settings)
    con = duckdb.connect(str(wh.path))
    azure = ingest_billing(
        con, "azure", [_azure_eur(base / "azure-2026-11.csv")], month=date(2026, 11, 1)
    )
    costs = _openai_costs(
        base / "openai-costs.json",
        [
            (date(2026, 11, 3), "10.00", "gbp"),
            (date(2026, 11, 4), "3.00", "chf"),
            (date(2026, 11, 5), "4.00", "gbp"),
        ],
    )
    openai = ingest_billing(con, "openai", [costs], load_date=date(2026, 11, 5))
    con.close()
    assert sum(r.rows_loaded for r in azure) == 2 and sum(r.rows_loaded for r in openai) == 3

    ecb = base / "eurofxref-hist.csv"
    ecb.write_text(
        "Date,USD,JPY,GBP,\n2026-11-03,1.0850,160.10,0.8610,\n2026-11-02,1.0800,N/A,0.8600,\n",
        encoding="utf-8",
    )
    simple = base / "rates.csv"
    simple.write_text("date,currency,rate_to_usd\n2026-11-05,GBP,1.30\n", encoding="utf-8")
    runner = CliRunner()
    loads = [
        runner.invoke(app, ["fx", "load", str(f), "--warehouse", url]) for f in (ecb, simple)
    ]
    bad = base / "bad.csv"
    bad.write_text("date,currency,rate_to_usd\n2026-11-05,GBP,-1\n", encoding="utf-8")
    refused = runner.invoke(app, ["fx", "load", str(bad), "--warehouse", url])

    build(settings, select=SELECT, target_path=base / "dbt",
          extra_args=["--indirect-selection", "cautious"])
    con = duckdb.connect(str(wh.path))
    out = {
        "loads": loads,
        "refused": refused,
        "rates": con.execute(
            "select rate_date, currency, rate_to_usd from raw.fx_rates order by 1, 2"
        ).fetchall(),
        "lines": con.execute(
            "select vendor, usage_date, currency, billed_cost, billed_cost_usd, is_converted "
            "from staging.int_vendor_cost_lines order by usage_date, vendor"
        ).fetchall(),
        "recon": dict(
            con.execute(
                "select period_start, sum(invoice_billed_cost_usd) from marts.mart_reconciliation "
                "where grain = 'day' group by 1"
            ).fetchall()
        ),
        "recon_month": con.execute(
            "select sum(invoice_billed_cost_usd) from marts.mart_reconciliation "
            "where grain = 'month' and period_start = date '2026-11-01'"
        ).fetchone()[0],
        "focus": con.execute(
            "select billing_currency, sum(billed_cost), sum(x_billed_cost_usd) "
            "from marts.fct_focus_cost group by 1 order by 1"
        ).fetchall(),
        "chargeback": con.execute(
            "select sum(invoice_billed_cost_usd) from marts.mart_chargeback_reconciled "
            "where month_start = date '2026-11-01'"
        ).fetchone()[0],
        "unconverted": con.execute(
            "select vendor, usage_date, currency, lines, billed_cost from "
            "marts.mart_unconverted_billing"
        ).fetchall(),
    }
    con.close()
    from tokenbook.focus_export import export_focus

    out["export"] = export_focus(settings, "2026-11", base / "focus.parquet", fmt="parquet")
    # the same lines in a reporting currency other than USD (TOKENBOOK_REPORTING_CURRENCY)
    build(load_settings(warehouse=url, reporting_currency="EUR"),
          select=["int_vendor_cost_lines"], target_path=base / "dbt")
    con = duckdb.connect(str(wh.path))
    out["reporting"] = con.execute(
        "select usage_date, currency, reporting_currency, billed_cost_reporting "
        "from staging.int_vendor_cost_lines order by usage_date, billed_cost"
    ).fetchall()
    con.close()
    return out


def test_fx_load_reads_the_ecb_csv_and_a_simple_file(converted):
    assert [r.exit_code for r in converted["loads"]] == [0, 0], [
        r.output for r in converted["loads"]
    ]
    rates = converted["rates"]
    assert (date(2026, 11, 2), "EUR", Decimal("1.080000000")) in rates
    assert (date(2026, 11, 3), "GBP", GBP_3) in rates
    assert (date(2026, 11, 5), "GBP", Decimal("1.300000000")) in rates
    assert not any(r[1] == "JPY" and r[0] == date(2026, 11, 2) for r in rates)  # N/A skipped
    assert converted["refused"].exit_code == 1
    assert "positive" in converted["refused"].output


def test_lines_keep_their_billed_amount_and_get_usd(converted):
    lines = converted["lines"]
    azure = [r for r in lines if r[0] == "azure"]
    assert {r[2] for r in azure} == {"EUR"}
    assert sum(r[3] for r in azure) == sum(AZURE_EUR)
    assert sum(r[4] for r in azure) == AZURE_USD
    gbp = {r[1]: r for r in lines if r[2] == "GBP"}
    assert gbp[date(2026, 11, 3)][3:] == (Decimal("10.000000000"), GBP_USD_3, True)
    assert gbp[date(2026, 11, 5)][3:] == (Decimal("4.000000000"), GBP_USD_5, True)
    chf = [r for r in lines if r[2] == "CHF"]
    assert chf == [("openai", date(2026, 11, 4), "CHF", Decimal("3.000000000"), None, False)]


def test_reconciliation_and_reconciled_chargeback_use_converted_amounts(converted):
    recon = converted["recon"]
    assert recon[date(2026, 11, 2)] == AZURE_USD
    assert recon[date(2026, 11, 3)] == GBP_USD_3
    assert recon[date(2026, 11, 5)] == GBP_USD_5
    assert recon.get(date(2026, 11, 4), Decimal(0)) == 0  # CHF is not counted as 3 dollars
    total = AZURE_USD + GBP_USD_3 + GBP_USD_5
    assert converted["recon_month"] == total
    assert converted["chargeback"] == total


def test_focus_keeps_the_billing_currency_and_adds_usd(converted):
    focus = {r[0]: r[1:] for r in converted["focus"]}
    assert focus["EUR"] == (sum(AZURE_EUR), AZURE_USD)
    assert focus["GBP"] == (Decimal("14.000000000"), GBP_USD_3 + GBP_USD_5)
    assert focus["CHF"] == (Decimal("3.000000000"), None)


def test_a_missing_rate_is_reported_unconverted(converted):
    assert converted["unconverted"] == [
        ("openai", date(2026, 11, 4), "CHF", 1, Decimal("3.000000000"))
    ]


def test_reporting_currency_converts_on_from_usd(converted):
    rows = converted["reporting"]
    assert {r[2] for r in rows} == {"EUR"}
    by_day = {}
    for day, currency, _, amount in rows:
        by_day.setdefault((day, currency), []).append(amount)
    # EUR lines come back to what was billed; GBP 11-03 via USD at that day's EUR rate
    assert sorted(by_day[(date(2026, 11, 2), "EUR")]) == [Decimal("0.825"), Decimal("6.6")]
    expected = GBP_USD_3 / Decimal("1.085")
    assert abs(by_day[(date(2026, 11, 3), "GBP")][0] - expected) <= Decimal("0.000000001")
    # no EUR rate within 7 days of 11-05? the ECB 11-03 rate still holds (weekend rule)
    assert by_day[(date(2026, 11, 5), "GBP")][0] == (GBP_USD_5 / Decimal("1.085")).quantize(
        Decimal("0.000000001")
    )
    assert by_day[(date(2026, 11, 4), "CHF")] == [None]


def test_focus_export_file_keeps_billing_currency_with_usd_beside(converted):
    import pyarrow.parquet as pq

    result = converted["export"]
    table = pq.read_table(result.path).to_pylist()
    by_currency: dict[str, list] = {}
    for row in table:
        by_currency.setdefault(row["BillingCurrency"], []).append(row)
    assert set(by_currency) == {"EUR", "GBP", "CHF"}
    assert sum(r["BilledCost"] for r in by_currency["EUR"]) == sum(AZURE_EUR)
    assert sum(r["x_BilledCostUsd"] for r in by_currency["EUR"]) == AZURE_USD
    assert [r["x_BilledCostUsd"] for r in by_currency["CHF"]] == [None]
    # the export's own total is in USD and leaves the unconverted CHF out
    assert result.billed_cost_usd == AZURE_USD + GBP_USD_3 + GBP_USD_5


def test_fx_load_on_bigquery_is_one_load_job_and_one_merge(tmp_path):
    import sqlglot

    from ingestion.fx import load_fx_rates_bigquery
    from tests.bigquery_fakes import FakeClient

    class Client(FakeClient):
        def create_table(self, table, exists_ok=False):
            self.events.append(("create", table.table_id))
            return table

    rates = tmp_path / "rates.csv"
    rates.write_text(
        "date,currency,rate_to_usd\n2026-11-05,GBP,1.30\n2026-11-05,gbp,1.31\n"
        "2026-11-06,EUR,1.08\n",
        encoding="utf-8",
    )
    client = Client()
    result = load_fx_rates_bigquery(client, "orbit-finops.tokenbook_raw.fx_rates", rates)
    assert result.rows == 2 and result.currencies == ("EUR", "GBP")
    (load,) = client.loads
    assert load["destination"] == "orbit-finops.tokenbook_raw.fx_rates__load"
    assert load["table"].to_pylist()[0]["rate_to_usd"] == Decimal("1.310000000")  # last wins
    (query,) = client.queries
    merge = sqlglot.parse_one(query["sql"], read="bigquery")
    assert isinstance(merge, sqlglot.exp.Merge)
    assert "t.rate_date = s.rate_date AND t.currency = s.currency" in merge.sql("bigquery")
    assert [e[0] for e in client.events] == ["create", "load", "query", "drop"]

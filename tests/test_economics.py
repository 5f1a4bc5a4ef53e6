"""The economics and governance marts, built for real by dbt on the demo organisation.

Seed 7 (130 days ending 2026-11-27, so August, September and October are complete months) is
ingested, built, forecast twice (as of 2026-09-30 and 2026-11-27: October then has a forecast
made before it began) and the `after_forecast` marts rebuilt, as the nightly DAG does. A second
seed (13) moves the planted evals and traffic; the policy and deprecation findings follow it.
Every expected figure is recomputed here from the calls fact, the eval CSV or the manifest,
never copied from the mart.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.settings import load_settings
from core.warehouse import connect_duckdb, parse_warehouse
from ingestion.billing.loader import ingest_billing
from ingestion.evals import ingest_evals
from ingestion.gateway.pipeline import ingest_gateway
from tokenbook.dbt import run_dbt
from tokenbook.demo import generate
from tokenbook.demo.billing import write_vendor_exports

END = date(2026, 11, 27)
MARTS = (
    "mart_finetune_breakeven",
    "mart_commit_readiness",
    "mart_model_deprecations",
    "mart_finops_kpis",
    "mart_pii_incidents",
    "mart_policy_violations",
    "mart_unattributed_by_source",
)


def _build_demo(root: Path, seed: int, days: int, marts: tuple[str, ...],
                billing: bool = False) -> dict:
    manifest = generate(root / "demo", days=days, end=END, seed=seed, scale=0.03)
    if billing:  # the vendors' exports of the same traffic (for the reconciliation KPI)
        write_vendor_exports(root / "demo", manifest, seed)
    url = f"duckdb:///{root}/wh.duckdb"
    settings = load_settings(warehouse=url, config_dir=str(root / "demo" / "config"))
    files = sorted((root / "demo" / "gateway").glob("*.jsonl.gz"))
    ingest_gateway(files, settings)
    con = connect_duckdb(parse_warehouse(url))
    try:
        ingest_evals(con, [root / "demo" / "evals" / "evals.csv"], load_date=END)
        for vendor in (sorted(p.name for p in (root / "demo" / "billing").iterdir())
                       if billing else ()):
            ingest_billing(con, vendor, [root / "demo" / "billing" / vendor])
    finally:
        con.close()
    # the parents' own tests belong to their owners' suites: build the parents without
    # tests, then build these marts with their data and unit tests
    run_dbt(["build", "--select", " ".join("+" + m for m in marts),
             "--exclude-resource-type", "test", "unit_test"], settings, target_path=root / "target")
    run_dbt(["build", "--select", " ".join(marts)], settings, target_path=root / "target")
    return {"manifest": manifest, "url": url, "settings": settings, "root": root}


def _query(url: str, sql: str) -> list[tuple]:
    con = connect_duckdb(parse_warehouse(url))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _rows(url: str, sql: str) -> list[dict]:
    con = connect_duckdb(parse_warehouse(url))
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo7(tmp_path_factory) -> dict:
    from forecasting.config import ForecastConfig
    from forecasting.job import forecast_warehouse

    root = tmp_path_factory.mktemp("econ7")
    built = _build_demo(root, 7, 130, MARTS, billing=True)
    # before the forecast step the forecast-reading marts built with null forecast columns
    built["before"] = _rows(built["url"], "select * from marts.mart_finetune_breakeven")
    # small runs: October's total-spend forecast made on 2026-09-30 (for the KPI forecast
    # error), then the series the economics marts read, as of the last day
    small = {"n_samples": 100, "backtest_cutoffs": 2, "specs": ("additive",), "workers": 1,
             "anomaly_lookback_days": 1}
    wh = parse_warehouse(built["url"])
    forecast_warehouse(wh, date(2026, 9, 30),
                       ForecastConfig(levels=("total",), metrics=("spend",), **small))
    forecast_warehouse(wh, END, ForecastConfig(levels=("total", "feature", "provider_model"),
                                               metrics=("spend", "tokens"), **small))
    # what the nightly DAG runs after the forecast step
    run_dbt(["build", "--select", "tag:after_forecast"], built["settings"],
            target_path=root / "target")
    return built


@pytest.fixture(scope="module")
def demo13(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("econ13")
    return _build_demo(root, 13, 45, ("mart_policy_violations", "mart_model_deprecations"))


def _evals(root: Path) -> list[dict]:
    with open(root / "demo" / "evals" / "evals.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _fallback_passes(root: Path, feature: str, model: str) -> bool:
    return any(r["feature"] == feature and r["model"] == model and r["passed"] == "true"
               and date.fromisoformat(r["eval_date"]) <= END for r in _evals(root))


# ---- fine-tune break-even --------------------------------------------------------------

def test_finetune_verdicts_follow_eval_and_payback(demo7):
    rows = {r["candidate_id"]: r for r in _rows(
        demo7["url"], "select * from marts.mart_finetune_breakeven")}
    assert set(rows) == {"code_review-ft-gpt41mini", "support_chat-llama8b-selfhost",
                         "doc_summarizer-ft-flashlite"}
    # never 'go' without a passed eval
    assert all(r["verdict"] != "go" for r in rows.values() if not r["passed_eval"])
    code = rows["code_review-ft-gpt41mini"]
    assert code["verdict"] == "go" and code["months_to_amortise_current"] <= 12
    # the self-hosted 8B failed its eval and its GPU + labour cost dwarfs the token saving
    selfhost = rows["support_chat-llama8b-selfhost"]
    assert selfhost["verdict"] == "no-go"
    assert selfhost["net_saving_per_month_current_usd"] < 0
    assert selfhost["break_even_tokens_per_month"] > 1_000_000_000
    # current volume: the feature's priced tokens in the last 30 days, scaled to a month
    (tokens,) = _query(demo7["url"], (
        "select sum(input_tokens + output_tokens) from marts.fct_llm_calls where is_priced "
        "and feature = 'code_review' and call_date > date '2026-11-27' - 30"))[0]
    assert code["current_tokens_per_month"] == pytest.approx(tokens * 30.4375 / 30, abs=1)
    # months to amortise = training / (tokens x saving - fixed), by hand from the row
    net = code["current_tokens_per_month"] / 1e6 * float(code["saving_per_mtok_usd"])
    assert code["months_to_amortise_current"] == pytest.approx(400 / net, rel=1e-3)


def test_finetune_reads_the_forecast_after_the_forecast_step(demo7):
    assert all(r["forecast_tokens_per_month"] is None for r in demo7["before"])
    rows = _rows(demo7["url"], "select * from marts.mart_finetune_breakeven")
    assert all(r["forecast_tokens_per_month"] > 0 for r in rows)
    assert {r["forecast_month"] for r in rows} == {date(2026, 12, 1)}


# ---- commitment readiness --------------------------------------------------------------

def test_commit_readiness(demo7):
    rows = {r["provider"]: r for r in _rows(
        demo7["url"], "select * from marts.mart_commit_readiness")}
    assert {r["history_first_month"] for r in rows.values()} == {date(2026, 8, 1)}
    assert {r["complete_months_available"] for r in rows.values()} == {3}
    # Vertex has no offer in the seed: never ready
    assert rows["vertex_ai"]["readiness"] == "not ready"
    ready = [r for r in rows.values() if r["readiness"] == "ready"]
    assert ready, "the demo has a stable provider with an offer"
    for r in ready:
        assert r["coefficient_of_variation"] <= 0.25 and r["offer_id"]
        assert r["recommended_commit_usd"] <= r["min_monthly_cost_usd"]
        assert r["forecast_p10_usd"] is not None
        assert r["saving_per_month_usd"] == (
            r["recommended_commit_usd"] * r["discount_pct"] / 100).quantize(Decimal("1e-9"))
    # the launch doubles code_review's traffic: its provider's dominant model is unstable
    for r in rows.values():
        if r["not_ready_reason"] and r["not_ready_reason"].startswith("unstable"):
            assert r["coefficient_of_variation"] > 0.25
    # minimum of the dominant model's three months, straight from the calls fact
    r = ready[0]
    monthly = _query(demo7["url"], (
        "select call_month, sum(effective_cost_usd) from marts.fct_llm_calls "
        f"where provider = '{r['provider']}' and regexp_replace(lower(coalesce(catalog_model, "
        f"model)), '-20[0-9]{{2}}-?[0-9]{{2}}-?[0-9]{{2}}$', '') = '{r['dominant_model']}' "
        "and call_month between date '2026-08-01' and date '2026-10-01' group by 1"))
    assert r["min_monthly_cost_usd"] == min(v for _, v in monthly)
    assert not any(r["self_hosting_signal"] for r in rows.values())  # 0.03 scale: far below 2B


# ---- model deprecations ----------------------------------------------------------------

def _check_deprecations(demo: dict) -> list[dict]:
    rows = _rows(demo["url"], "select * from marts.mart_model_deprecations")
    assert rows and all(r["as_of_date"] == END for r in rows)
    # claude-sonnet-4-5 retires in more than 90 days: not listed
    assert not any(r["model"] == "claude-sonnet-4-5" for r in rows)
    for r in rows:
        assert r["fallback_has_passing_eval"] == _fallback_passes(
            demo["root"], r["feature"], r["fallback_model"]), r
        (spend,) = _query(demo["url"], (
            "select coalesce(sum(effective_cost_usd), 0) from marts.fct_llm_calls "
            f"where provider = '{r['provider']}' and feature = '{r['feature']}' "
            f"and call_date > date '2026-11-27' - 30 and regexp_replace(lower(coalesce("
            f"catalog_model, model)), '-20[0-9]{{2}}-?[0-9]{{2}}-?[0-9]{{2}}$', '') = '{r['model']}'"))[0]
        assert r["window_effective_cost_usd"] == spend
    return rows


def test_deprecations_seed7(demo7):
    rows = {(r["model"], r["feature"]): r for r in _check_deprecations(demo7)}
    # seed 7: code_review's gpt-5-mini eval failed -> o4-mini's retirement puts it at risk
    assert rows[("o4-mini", "code_review")]["migration_status"] == "at risk: fallback not evaluated"
    assert rows[("gemini-2.5-pro", "doc_summarizer")]["migration_status"] == "ready to migrate"
    assert rows[("o4-mini", "code_review")]["days_to_retirement"] == 49


def test_deprecations_follow_the_seed(demo13):
    rows = {(r["model"], r["feature"]): r for r in _check_deprecations(demo13)}
    # seed 13: gpt-5-mini passed code_review's eval, so the same retirement is ready
    assert rows[("o4-mini", "code_review")]["migration_status"] == "ready to migrate"


# ---- governance ------------------------------------------------------------------------

def _check_policy(demo: dict) -> None:
    rows = _rows(demo["url"], "select * from marts.mart_policy_violations")
    legal = {r["provider"] for r in rows if r["policy_id"] == "legal-privileged"}
    expected_providers = {p for (p,) in _query(demo["url"], (
        "select distinct provider from marts.fct_llm_calls where feature = 'contract_extractor' "
        "and provider not in ('anthropic', 'bedrock')"))}
    assert legal == expected_providers and "openai" in legal
    (openai_spend,) = _query(demo["url"], (
        "select sum(effective_cost_usd) from marts.fct_llm_calls "
        "where feature = 'contract_extractor' and provider = 'openai'"))[0]
    assert sum(r["effective_cost_usd"] for r in rows
               if r["policy_id"] == "legal-privileged" and r["provider"] == "openai") == openai_spend
    # enterprise traffic served in an EU region breaks the US-residency policy on its region
    eu = [r for r in rows if r["region"] in ("europe-west4", "swedencentral")
          and r["policy_id"] == "enterprise-us-residency"]
    assert eu and all(r["violation_kind"] == "region not allowed" for r in eu)
    # calls in an allowed region never appear
    assert not any(r["region"] in ("us-central1", "eastus") and r["provider"] != "self_hosted"
                   and r["policy_id"] == "enterprise-us-residency" for r in rows)


def test_policy_violations(demo7):
    _check_policy(demo7)


def test_policy_violations_follow_the_seed(demo13):
    _check_policy(demo13)


def test_pii_incidents_match_the_planted_counts(demo7):
    by_field = demo7["manifest"]["pii"]["by_field"]
    rows = _query(demo7["url"], (
        "select field, kind, sum(redactions) from marts.mart_pii_incidents "
        "where source = 'gateway' group by 1, 2"))
    got = {(f, k): n for f, k, n in rows}
    want = {(f, k): n for f, kinds in by_field.items() for k, n in kinds.items() if n}
    assert got == want


def test_unattributed_by_source(demo7):
    rows = _rows(demo7["url"], "select * from marts.mart_unattributed_by_source")
    (want,) = _query(demo7["url"], (
        "select sum(effective_cost_usd) from marts.fct_llm_calls "
        "where feature = '(unattributed)' or customer_segment = '(unattributed)'"))[0]
    assert sum(r["unattributed_effective_cost_usd"] for r in rows) == want
    keys = {r["api_key_id"] for r in rows if r["unattributed_effective_cost_usd"] > 0}
    assert len(keys) > 1 and "(none)" not in keys


# ---- KPI scorecard ---------------------------------------------------------------------

def test_finops_kpis(demo7):
    rows = {r["month"]: r for r in _rows(demo7["url"], "select * from marts.mart_finops_kpis")}
    assert sorted(rows) == [date(2026, m, 1) for m in (7, 8, 9, 10, 11)]
    oct_ = rows[date(2026, 10, 1)]
    assert oct_["is_complete_month"] and not rows[date(2026, 11, 1)]["is_complete_month"]
    # October's forecast was made on 2026-09-30; its error is actual / p50 - 1
    assert oct_["forecast_as_of"] == date(2026, 9, 30)
    assert oct_["forecast_error_pct"] == pytest.approx(
        float(oct_["effective_cost_usd"]) / float(oct_["forecast_p50_usd"]) - 1)
    calls, traces = _query(demo7["url"], (
        "select count(*), count(distinct trace_id) from marts.fct_llm_calls "
        "where call_month = date '2026-10-01'"))[0]
    assert oct_["retry_amplification"] == pytest.approx(calls / traces) and calls > traces
    per_feature = json.loads(oct_["cost_per_outcome_by_feature_json"])
    assert "support_chat" in per_feature and per_feature["support_chat"] > 0
    # payback = cache dollars + routing dollars (routing: the as-of month only)
    nov = rows[date(2026, 11, 1)]
    assert nov["gateway_payback_usd"] == nov["cache_savings_usd"] + (
        nov["routing_savings_available_usd"] or 0)
    assert oct_["routing_savings_available_usd"] is None
    # reconciliation: invoice billed - gateway list cost of the month rows
    billed, listed = _query(demo7["url"], (
        "select sum(coalesce(invoice_billed_cost_usd, 0)), sum(gateway_list_cost_usd) "
        "from marts.mart_reconciliation where grain = 'month' and period_start = '2026-10-01'"))[0]
    assert oct_["invoice_billed_cost_usd"] == billed > 0
    assert oct_["reconciliation_variance_usd"] == billed - listed
    assert sum(r["pii_redactions"] for r in rows.values()) == demo7["manifest"]["pii"]["total"]
    assert 0 < nov["unattributed_share"] < 0.1


# ---- BigQuery: the same models compile offline ----------------------------------------

def test_marts_compile_for_bigquery(bigquery_compiled):
    import sqlglot

    # issue 14: the raw and forecast tables are read by their staging models (source() only
    # in staging), which the marts read in turn. The project compiled for BigQuery offline,
    # once per session (tests/conftest.py).
    staging = ("stg_gateway__calls", "stg_forecasts__monthly")
    nodes = json.loads(bigquery_compiled.read_text())["nodes"]
    for name in ("int_economics_forecasts", *staging, *MARTS):
        sql = nodes[f"model.tokenbook.{name}"]["compiled_code"]
        assert ("`orbit-finops`.`tokenbook_marts`" in sql
                or name in ("mart_pii_incidents", "int_economics_forecasts", *staging)), name
        sqlglot.parse_one(sql, read="bigquery")
    policy = nodes["model.tokenbook.mart_policy_violations"]["compiled_code"]
    assert "json_value(extra, '$.region')" in nodes["model.tokenbook.stg_gateway__calls"]["compiled_code"]
    assert "`tokenbook_staging`.`stg_gateway__calls`" in policy
    assert "`tokenbook_marts`.`forecast_monthly`" in (
        nodes["model.tokenbook.stg_forecasts__monthly"]["compiled_code"])
    assert "`tokenbook_staging`.`stg_forecasts__monthly`" in (
        nodes["model.tokenbook.int_economics_forecasts"]["compiled_code"])
